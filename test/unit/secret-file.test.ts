// common/secret-file.ts: every program's secret and key files are read through it, and a file that
// others can read is named with its mode (never its contents) while the secret is still returned.
// The rule: world-readable always warns; group-readable warns unless root owns the file (a
// deliberate `0640 root:<group>` grant). Changing a file's owner needs root, as the test suite runs.
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { readSecretFile, secretReaders, type SecretFileWarning } from '../../common/secret-file.ts';

const dir = mkdtempSync(join(tmpdir(), 'st-secret-file-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function secretWithMode(name: string, mode: number): string {
  const file = join(dir, name);
  writeFileSync(file, 's3cr3t-value\n');
  chmodSync(file, mode);
  return file;
}

function read(file: string): { text: string; warnings: SecretFileWarning[] } {
  const warnings: SecretFileWarning[] = [];
  return { text: readSecretFile(file, (warning) => warnings.push(warning)), warnings };
}

describe('readSecretFile', () => {
  it('when only the owner can read the file (0600, 0400), then it returns the text without a warning', () => {
    for (const mode of [0o600, 0o400]) {
      const { text, warnings } = read(secretWithMode(`owner-${mode.toString(8)}`, mode));
      assert.equal(text, 's3cr3t-value\n');
      assert.deepEqual(warnings, []);
    }
  });

  it('when its group can read it (0640) and a user other than root owns it, then the warning names the file, mode, owner and fix', () => {
    const file = secretWithMode('group-user', 0o640);
    chownSync(file, 12345, 12345);
    const { text, warnings } = read(file);
    assert.equal(text, 's3cr3t-value\n');
    assert.deepEqual(warnings, [
      {
        file,
        mode: '0640',
        message: `secret file ${file} has mode 0640 (owner uid 12345): its group can read it; chmod 600 it, or chown it to root to share it with the group on purpose`,
      },
    ]);
  });

  it('when its group can read it (0640) and root owns it, then it is a deliberate group grant: no warning', () => {
    const file = secretWithMode('group-root', 0o640);
    chownSync(file, 0, 12345);
    assert.equal(statSync(file).uid, 0);
    const { text, warnings } = read(file);
    assert.equal(text, 's3cr3t-value\n');
    assert.deepEqual(warnings, []);
  });

  it('when everyone can read it (0644, 0604), then the warning says so, whoever owns it (root included)', () => {
    for (const [mode, uid] of [
      [0o644, 12345],
      [0o604, 12345],
      [0o644, 0],
    ] as const) {
      const file = secretWithMode(`world-${mode.toString(8)}-${uid}`, mode);
      chownSync(file, uid, uid);
      const { warnings } = read(file);
      assert.equal(warnings.length, 1);
      assert.equal(
        warnings[0]?.message,
        `secret file ${file} has mode 0${mode.toString(8)} (owner uid ${uid}): every user can read it; chmod 600 it`,
      );
      assert.doesNotMatch(JSON.stringify(warnings), /s3cr3t/);
    }
  });

  it('when the path is a symlink, then the mode judged is the target file’s (the link’s own is always 0777)', () => {
    const target = secretWithMode('target', 0o600);
    const link = join(dir, 'link');
    symlinkSync(target, link);
    assert.deepEqual(read(link).warnings, []);
    chmodSync(target, 0o644);
    assert.equal(read(link).warnings[0]?.mode, '0644');
  });

  it('the rule on its own: world-readable always, group-readable unless root owns it, owner-only never', () => {
    assert.equal(secretReaders(0o600, 12345), undefined);
    assert.equal(secretReaders(0o600, 0), undefined);
    assert.equal(secretReaders(0o640, 12345), 'its group');
    assert.equal(secretReaders(0o640, 0), undefined);
    assert.equal(secretReaders(0o644, 0), 'every user');
    assert.equal(secretReaders(0o604, 12345), 'every user');
  });

  it('when the file is missing, then the fs error is thrown with its code', () => {
    assert.throws(
      () => readSecretFile(join(dir, 'missing'), () => undefined),
      (error: NodeJS.ErrnoException) => error.code === 'ENOENT',
    );
  });
});
