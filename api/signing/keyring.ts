// Rotation without downtime: the edge is configured to trust the old and the
// new key first, then config flips `active` to the new one, and the old key is
// removed only after the longest token lifetime has passed. The keyring itself
// is immutable; a flip is a new config, hence a new signer.
import type { SigningKeyInfo } from './signer.ts';

export interface KeyEntry<M> {
  id: string;
  active: boolean;
  material: M;
  notAfter?: Date;
}

export interface Keyring<M> {
  readonly active: KeyEntry<M>;
  readonly activeInfo: SigningKeyInfo;
  readonly keys: ReadonlyArray<KeyEntry<M>>;
}

/** Why these keys cannot form a keyring, or undefined if they can. Never mentions key material. */
export function keyringProblem(keys: ReadonlyArray<Pick<KeyEntry<unknown>, 'id' | 'active'>>): string | undefined {
  if (keys.length === 0) return 'keyring has no keys; configure at least one key with active: true';
  const seen = new Set<string>();
  for (const key of keys) {
    if (key.id === '') return 'keyring has a key with an empty id';
    if (seen.has(key.id)) return `keyring has duplicate key id ${JSON.stringify(key.id)}`;
    seen.add(key.id);
  }
  const active = keys.filter((key) => key.active).map((key) => key.id);
  if (active.length === 0) {
    return `keyring has no active key (keys: ${keys.map((key) => key.id).join(', ')}); exactly one must have active: true`;
  }
  if (active.length > 1) {
    return `keyring has ${active.length} active keys (${active.join(', ')}); exactly one must have active: true`;
  }
  return undefined;
}

export function createKeyring<M>(keys: ReadonlyArray<KeyEntry<M>>): Keyring<M> {
  const problem = keyringProblem(keys);
  const active = keys.find((key) => key.active);
  if (problem !== undefined || active === undefined) throw new Error(problem);
  const activeInfo: SigningKeyInfo = active.notAfter === undefined ? { id: active.id } : { id: active.id, notAfter: active.notAfter };
  return { active, activeInfo, keys: [...keys] };
}
