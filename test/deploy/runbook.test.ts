// deploy/RUNBOOK.md is what on-call engineers type at 3 a.m.: every state it promises is there, and
// every `watcher …` command and option it shows is one the real CLI accepts.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { run } from '../../watcher/cli.ts';
import { REPO } from '../watcher/harness.ts';

const RUNBOOK = readFileSync(join(REPO, 'deploy', 'RUNBOOK.md'), 'utf8');

async function watcherUsage(): Promise<string> {
  const stdout = new PassThrough();
  let text = '';
  stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const code = await run(['--help'], { stdin: new PassThrough(), stdout, stderr: new PassThrough(), env: {} });
  assert.equal(code, 0);
  return text;
}

/** `watcher <command> …` as typed in the runbook's code blocks and inline code. */
function shownWatcherInvocations(): string[] {
  const code =
    [...RUNBOOK.matchAll(/```[a-z]*\n([\s\S]*?)```/g)].map((m) => m[1] ?? '').join('\n') +
    '\n' +
    [...RUNBOOK.matchAll(/`([^`\n]+)`/g)].map((m) => m[1] ?? '').join('\n');
  return [...code.matchAll(/(?:^|[\s(])watcher ([a-z][a-z-]*(?: [^\n#`|]*)?)/gm)].map((m) => (m[1] ?? '').trim());
}

describe('deploy/RUNBOOK.md', () => {
  it('when read, then it has a section for every on-call state', () => {
    const headings = [...RUNBOOK.matchAll(/^#{2,4} (.+)$/gm)].map((m) => (m[1] ?? '').toLowerCase());
    for (const state of [
      'healthy',
      'degraded (redis down)',
      'node excluded',
      'floor engaged',
      'redis failover in progress',
      'watcher failing',
      'route53 throttling',
    ]) {
      assert.ok(headings.includes(state), `a "${state}" section`);
    }
    assert.match(RUNBOOK, /blue\/green/i);
  });

  it('when it shows `watcher <command>`, then the CLI usage lists that command and every option used', async () => {
    const usage = await watcherUsage();
    const commands = new Set([...(/Commands:\n([\s\S]*?)\n\n/.exec(usage)?.[1] ?? '').matchAll(/^ {2}([a-z-]+)/gm)].map((m) => m[1]));
    const options = new Set([...usage.matchAll(/(--[a-z-]+)/g)].map((m) => m[1]));
    const shown = shownWatcherInvocations();
    assert.ok(shown.length >= 8, `found ${shown.length} watcher invocations`);
    for (const invocation of shown) {
      const [command] = invocation.split(' ');
      assert.ok(commands.has(command), `"watcher ${invocation}": ${command} is not in the usage text (${[...commands].join(', ')})`);
      for (const option of invocation.match(/--[a-z-]+/g) ?? [])
        assert.ok(options.has(option), `"watcher ${invocation}": ${option} is not in the usage text`);
    }
    for (const command of ['status', 'exclude', 'include', 'reconcile', 'plan'])
      assert.ok(
        shown.some((s) => s.startsWith(command)),
        `the runbook uses watcher ${command}`,
      );
  });

  it('when it describes st-api/dns/status, then it names every field the watcher writes', () => {
    const source = readFileSync(join(REPO, 'watcher', 'state', 'consul-state.ts'), 'utf8');
    const body = /export interface RunStatus \{([\s\S]*?)\n\}/.exec(source)?.[1] ?? '';
    const fields = [...body.matchAll(/^ {2}([a-zA-Z]+):/gm)].map((m) => m[1] ?? '');
    assert.ok(fields.length >= 10, 'RunStatus fields found');
    for (const field of [...fields, 'create', 'upsert', 'delete', 'deferredDeletes'])
      assert.ok(RUNBOOK.includes(`\`${field}\``), `field ${field}`);
  });

  it('when it quotes /health/deep bodies, then each has the verdict and the probes in st-api’s order', () => {
    const bodies = [...RUNBOOK.matchAll(/`((?:ok|warn|fail) node=[^`]*)`/g)].map((m) => m[1] ?? '');
    assert.ok(bodies.length >= 4);
    for (const body of bodies) {
      const names = body
        .split(' ')
        .slice(1)
        .map((part) => part.split('=')[0]);
      assert.deepEqual(names, ['node', 'mysql', 'redis', 'keys', 'lag'], body);
    }
  });

  it('when it quotes the Sentinel command, then it asks for the configured master by name on the Sentinel port', () => {
    assert.ok(RUNBOOK.includes('redis-cli -p 26379 sentinel get-master-addr-by-name mymaster'));
    assert.ok(RUNBOOK.includes('consul kv get st-api/dns/status'));
  });
});
