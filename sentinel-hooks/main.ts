#!/usr/bin/env node
// The hooks' executable. Sentinel execve()s a wrapper that runs `main.js client-reconfig|notification "$@"`;
// the reconcile timer runs `main.js reconcile`.
import { run } from './cli.ts';

// process.exit, not exitCode: nothing may keep a hook alive past its deadline (Sentinel kills at 60 s).
process.exit(await run(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env }));
