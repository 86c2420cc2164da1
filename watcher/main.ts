#!/usr/bin/env node
// The watcher's executable: Consul's watch runs `watcher handle`; operators run the other commands.
import { run } from './cli.ts';

process.exitCode = await run(process.argv.slice(2), {
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
});
