// common/secret-file.ts: every program's secret and key files are read through it, and a file that
// others can read is named with its mode (never its contents) while the secret is still returned.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { readSecretFile, type SecretFileWarning } from '../../common/secret-file.ts';

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

  it('when its group can read it (0640), then the warning names the file and the mode, and the text is still returned', () => {
    const file = secretWithMode('group', 0o640);
    const { text, warnings } = read(file);
    assert.equal(text, 's3cr3t-value\n');
    assert.deepEqual(warnings, [{ file, mode: '0640', message: `secret file ${file} has mode 0640: its group can read it; chmod 600 it` }]);
  });

  it('when everyone can read it (0644, 0604), then the warning says so', () => {
    for (const mode of [0o644, 0o604]) {
      const file = secretWithMode(`world-${mode.toString(8)}`, mode);
      const { warnings } = read(file);
      assert.equal(warnings.length, 1);
      assert.equal(warnings[0]?.message, `secret file ${file} has mode 0${mode.toString(8)}: every user can read it; chmod 600 it`);
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

  it('when the file is missing, then the fs error is thrown with its code', () => {
    assert.throws(
      () => readSecretFile(join(dir, 'missing'), () => undefined),
      (error: NodeJS.ErrnoException) => error.code === 'ENOENT',
    );
  });
});
