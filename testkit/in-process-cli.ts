// Runs a command-line program's run() in this process, as its main.ts would, and collects what it
// wrote: stdout, stderr, and stderr's JSON log lines parsed.
import { PassThrough, type Readable, type Writable } from 'node:stream';

export interface CliOutcome {
  code: number;
  stdout: string;
  stderr: string;
  logged: Record<string, unknown>[];
}

export async function runInProcess(
  run: (io: { stdin: Readable; stdout: Writable; stderr: Writable }) => Promise<number>,
  stdin = '',
): Promise<CliOutcome> {
  const [input, stdout, stderr] = [new PassThrough(), new PassThrough(), new PassThrough()];
  input.end(stdin);
  const out: string[] = [];
  const err: string[] = [];
  stdout.on('data', (chunk: Buffer) => out.push(chunk.toString()));
  stderr.on('data', (chunk: Buffer) => err.push(chunk.toString()));
  const code = await run({ stdin: input, stdout, stderr });
  const text = err.join('');
  const logged = text
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  return { code, stdout: out.join(''), stderr: text, logged };
}
