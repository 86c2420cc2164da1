// Every program reads its secrets and private keys (TLS keys, passwords, tokens) through here, so a
// file that other users can read is reported the same way everywhere: a warning that names the file
// and its mode, never its contents. Reading goes on: refusing would turn a permission slip into an
// outage, and the operator who sees the warning can fix it without a restart.
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';

export interface SecretFileWarning {
  readonly file: string;
  /** Permission bits in octal, e.g. `0644`. */
  readonly mode: string;
  /** One sentence for the log: the file, its mode, who can read it, and what to do. */
  readonly message: string;
}

const WORLD_READABLE = 0o004;
const GROUP_READABLE = 0o040;

/**
 * Who besides the owner can read a file with these permission bits owned by `uid`, or undefined when
 * nobody can. Group-readable is a deliberate grant when root owns the file (`0640 root:<group>`, as
 * Debian's ssl-cert group and PostgreSQL's rule for a root-owned key): only root could have set it.
 * Owned by anyone else, the group may hold users the owner never meant to share with.
 */
export function secretReaders(permissions: number, uid: number): 'every user' | 'its group' | undefined {
  if ((permissions & WORLD_READABLE) !== 0) return 'every user';
  if ((permissions & GROUP_READABLE) !== 0 && uid !== 0) return 'its group';
  return undefined;
}

/**
 * The file's text (UTF-8), after a warning through `onWarning` when others than its owner can read it
 * (see secretReaders). The mode and owner are taken from the open file, so they are the file actually
 * read even when the path is a symlink or is renamed over meanwhile. Errors (ENOENT, EACCES…) are
 * thrown as fs gives them.
 */
export function readSecretFile(file: string, onWarning: (warning: SecretFileWarning) => void): string {
  const fd = openSync(file, 'r');
  try {
    const stat = fstatSync(fd);
    const permissions = stat.mode & 0o777;
    const readers = secretReaders(permissions, stat.uid);
    if (readers !== undefined) {
      const mode = `0${permissions.toString(8).padStart(3, '0')}`;
      const fix = readers === 'every user' ? 'chmod 600 it' : 'chmod 600 it, or chown it to root to share it with the group on purpose';
      onWarning({ file, mode, message: `secret file ${file} has mode ${mode} (owner uid ${stat.uid}): ${readers} can read it; ${fix}` });
    }
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}
