// Every program reads its secrets and private keys (TLS keys, passwords, tokens) through here, so a
// file that other users can read is reported the same way everywhere: a warning that names the file
// and its mode, never its contents. Reading goes on: refusing would turn a permission slip into an
// outage, and the operator who sees the warning can fix it without a restart.
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';

export interface SecretFileWarning {
  readonly file: string;
  /** Permission bits in octal, e.g. `0644`. */
  readonly mode: string;
  /** One sentence for the log: the file, its mode, and what to do. */
  readonly message: string;
}

/** Group- or world-readable: someone besides the owner (and root) can read the secret. */
const READABLE_BY_OTHERS = 0o044;

/**
 * The file's text (UTF-8), after a warning through `onWarning` when its mode lets the group or
 * everyone read it. The mode is taken from the open file, so it is the file actually read even when
 * the path is a symlink or is renamed over meanwhile. Errors (ENOENT, EACCES…) are thrown as fs gives them.
 */
export function readSecretFile(file: string, onWarning: (warning: SecretFileWarning) => void): string {
  const fd = openSync(file, 'r');
  try {
    const permissions = fstatSync(fd).mode & 0o777;
    if ((permissions & READABLE_BY_OTHERS) !== 0) {
      const mode = `0${permissions.toString(8).padStart(3, '0')}`;
      const who = (permissions & 0o004) !== 0 ? 'every user' : 'its group';
      onWarning({ file, mode, message: `secret file ${file} has mode ${mode}: ${who} can read it; chmod 600 it` });
    }
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}
