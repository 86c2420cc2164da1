// The standalone double's command line (`npm run double:consul -- …`), run as the process npm starts.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';

const MAIN = new URL('./main.ts', import.meta.url).pathname;

function consulDouble(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, ['--import', 'tsx', MAIN, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('npm run double:consul', { timeout: 60_000 }, () => {
  it('when --help or -h is asked, then 0 and the usage on stdout, nothing started', () => {
    for (const flag of ['--help', '-h']) {
      const result = consulDouble([flag]);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /^Usage: npm run double:consul -- \[--port N\] \[--dns-port N\]/);
      assert.doesNotMatch(result.stdout, /consul double: http/);
      assert.equal(result.stderr, '');
    }
  });

  it('when an option is unknown, then 2 with the error and the usage, no stack', () => {
    const result = consulDouble(['--frobnicate']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /^consul double: Unknown option '--frobnicate'.*\n\nUsage: npm run double:consul/s);
    assert.doesNotMatch(result.stderr, /\n\s+at /);
  });
});
