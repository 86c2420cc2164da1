// The README is part of the contract: its error table and its test command must stay true.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { PROBLEMS } from '../../api/errors.ts';

const root = join(import.meta.dirname, '..', '..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');

describe('README', () => {
  it('when a client reads the error table, then it lists every code with its true status and nothing else', () => {
    const rows = [...readme.matchAll(/^\| (\d{3}) \| `([A-Z_]+)` \|/gm)].map(([, status, code]) => [code, Number(status)]);
    assert.deepEqual(
      Object.fromEntries(rows),
      Object.fromEntries(Object.entries(PROBLEMS).map(([code, problem]) => [code, problem.status])),
    );
  });

  it('when CI runs, then it runs exactly the test command the README gives a newcomer', () => {
    const commands = [...readme.matchAll(/```sh\n(.+)\n```/g)].map(([, command]) => command);
    assert.ok(commands.includes('npm ci && npm test'), 'README gives "npm ci && npm test"');
    assert.ok(commands.includes('npm ci && npm start'), 'README gives "npm ci && npm start"');
    const ci = readFileSync(join(root, '.ci', 'run'), 'utf8');
    assert.match(ci, /^npm ci && npm test$/m);
  });
});
