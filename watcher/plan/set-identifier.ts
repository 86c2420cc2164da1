// The SetIdentifier of a record the watcher owns: `<ownerId>/<node>/<service id>`.
//
// Route53 takes 1–128 characters (API Reference, ResourceRecordSet: SetIdentifier, "Length
// Constraints: Minimum length of 1. Maximum length of 128."), while a Consul node or service id may
// hold a slash, a newline or any other character. So node and service id are percent-encoded (UTF-8)
// outside [A-Za-z0-9._-]: the identifier is plain ASCII, the slash stays a separator only, nodeOf reads
// back the exact node, and ordinary names (api-node-7) encode to themselves, so records written by
// earlier versions are still recognised.
import type { DnsRecord, Instance } from '../model.ts';

export const MAX_SET_IDENTIFIER = 128;

function encodePart(text: string): string {
  // encodeURIComponent leaves !'()*~ as they are; they are encoded too, so only [A-Za-z0-9._-] stays.
  return encodeURIComponent(text).replace(/[!'()*~]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Throws URIError for a name that is not well-formed Unicode (a lone surrogate): see setIdentifierProblem. */
export function setIdentifierFor(ownerId: string, instance: Pick<Instance, 'node' | 'serviceId'>): string {
  return `${ownerId}/${encodePart(instance.node)}/${encodePart(instance.serviceId)}`;
}

/** Why Route53 would refuse this instance's SetIdentifier, or undefined when it accepts it. */
export function setIdentifierProblem(ownerId: string, instance: Pick<Instance, 'node' | 'serviceId'>): string | undefined {
  let setIdentifier: string;
  try {
    setIdentifier = setIdentifierFor(ownerId, instance);
  } catch {
    return 'node name or service id is not well-formed Unicode (a lone surrogate)';
  }
  if (setIdentifier.length > MAX_SET_IDENTIFIER) {
    return `its SetIdentifier would be ${setIdentifier.length} characters; Route53 accepts at most ${MAX_SET_IDENTIFIER} (shorten the node name or service id)`;
  }
  return undefined;
}

/** The node a record belongs to, read back from its SetIdentifier. */
export function nodeOf(ownerId: string, record: Pick<DnsRecord, 'setIdentifier'>): string {
  const part = record.setIdentifier.slice(ownerId.length + 1).split('/')[0] ?? '';
  try {
    return decodeURIComponent(part);
  } catch {
    // Not written by this encoding (a hand-made record): its text is all there is.
    return part;
  }
}
