// The command-line kit of common/cli: errors that say how a run failed, one table per program from
// kind to exit code, and the programs' logger.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import {
  exitCodeOf,
  exitNames,
  isConnectionFailure,
  ProgramError,
  translated,
  UsageError,
  type ExitCodes,
  errorOfKind,
} from '../../common/cli/errors.ts';
import { createProgramLogger, formatLogLine, setLogLevel } from '../../common/cli/logger.ts';

const CODES: ExitCodes<number> = { usage: 10, 'bad-input': 11, config: 12, unavailable: 13, transient: 14, refused: 15, bug: 99 };

class LockHeldError extends errorOfKind('LockHeldError', 'transient') {}

class StoredValueError extends errorOfKind('StoredValueError', 'bad-input') {}

class RefusedError extends errorOfKind('RefusedError', 'refused') {}

describe('errors that carry their exit code', () => {
  const cases: { name: string; error: unknown; code: number }[] = [
    { name: 'a usage error', error: new UsageError('unknown command'), code: 10 },
    { name: 'bad input', error: new StoredValueError('x'), code: 11 },
    { name: 'config', error: translated('config', new Error('x')), code: 12 },
    { name: 'unavailable', error: translated('unavailable', new Error('x')), code: 13 },
    { name: 'refused', error: new RefusedError('x'), code: 15 },
    { name: "a program's own subclass", error: new LockHeldError('held'), code: 14 },
    { name: 'a translated library error', error: translated('transient', new Error('x')), code: 14 },
    { name: 'any other error: a bug', error: new TypeError('undefined is not a function'), code: 99 },
    { name: 'something thrown that is not an Error', error: 'a string', code: 99 },
    { name: 'an error that only looks like one', error: Object.assign(new Error('x'), { kind: 'config' }), code: 99 },
  ];
  for (const { name, error, code } of cases) {
    it(`when the run fails with ${name}, then the table gives ${code}`, () => {
      assert.equal(exitCodeOf(error, CODES), code);
    });
  }

  it("when a library's error is translated, then its name and message stay (what runbooks name) and it is the cause", () => {
    const original = Object.assign(new Error('Rate exceeded'), { name: 'Throttling' });
    const error = translated('transient', original);
    assert.equal(`${error.name}: ${error.message}`, 'Throttling: Rate exceeded');
    assert.equal(error.kind, 'transient');
    assert.equal(error.cause, original);
    assert.ok(error instanceof ProgramError);
  });

  it('when a subclass names itself, then the name is what the log shows', () => {
    assert.equal(new LockHeldError('held').name, 'LockHeldError');
    assert.equal(new UsageError('x').name, 'UsageError');
    assert.equal(translated('config', 'not an Error').name, 'Error');
    assert.equal(translated('config', 'not an Error').message, 'not an Error');
  });

  const connection: [string, unknown, boolean][] = [
    ['ECONNREFUSED', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }), true],
    ['ECONNRESET', Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), true],
    ['ETIMEDOUT', Object.assign(new Error('x'), { code: 'ETIMEDOUT' }), true],
    ['EHOSTUNREACH', Object.assign(new Error('x'), { code: 'EHOSTUNREACH' }), true],
    ['ENOTFOUND', Object.assign(new Error('getaddrinfo ENOTFOUND consul'), { code: 'ENOTFOUND' }), true],
    ['EAI_AGAIN', Object.assign(new Error('x'), { code: 'EAI_AGAIN' }), true],
    ['EPIPE', Object.assign(new Error('x'), { code: 'EPIPE' }), true],
    ['EACCES (a file, not a peer)', Object.assign(new Error('x'), { code: 'EACCES' }), false],
    ['no code', new Error('ECONNREFUSED in the text only'), false],
    ['null', null, false],
  ];
  for (const [name, error, expected] of connection) {
    it(`when a socket error is ${name}, then it ${expected ? 'is' : 'is not'} a connection failure`, () => {
      assert.equal(isConnectionFailure(error), expected);
    });
  }
});

describe('exit code names', () => {
  it('when a program names its codes in an EXIT table, then each code is named by its key in lower case with dashes', () => {
    assert.deepEqual(exitNames({ OK: 0, BAD_INPUT: 65, TRANSIENT: 75 }), { 0: 'ok', 65: 'bad-input', 75: 'transient' });
  });
});

describe('the programs’ logger', () => {
  function capture(): { stream: Writable; raw: () => string; lines: () => Record<string, unknown>[] } {
    const chunks: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        chunks.push(chunk.toString());
        done();
      },
    });
    return {
      stream,
      raw: () => chunks.join(''),
      lines: () =>
        chunks
          .join('')
          .split('\n')
          .filter((line) => line !== '')
          .map((line) => JSON.parse(line) as Record<string, unknown>),
    };
  }

  it('when a line carries a token, password or secret, then they are redacted as in st-api’s logs, and program and command are on every line', () => {
    const { stream, lines } = capture();
    const logger = createProgramLogger({ program: 'st-api-test', command: 'reconcile', stderr: stream });
    logger.info({ token: 'consul-token', redisAuth: { password: 'hunter2' }, signer: { secret: 'abcd' } }, 'configuration');
    const [line] = lines();
    assert.equal(line?.['program'], 'st-api-test');
    assert.equal(line?.['command'], 'reconcile');
    assert.doesNotMatch(JSON.stringify(lines()), /consul-token|hunter2|abcd/);
    assert.equal(line?.['token'], '[redacted]');
  });

  it('when a line carries text from outside, then control and bidi characters are escaped', () => {
    const { stream, raw, lines } = capture();
    createProgramLogger({ program: 'p', command: 'c', stderr: stream }).warn({ node: 'api\u202enode' }, 'x\u2028{"level":60}');
    assert.equal(lines().length, 1);
    assert.doesNotMatch(raw(), /[\u202e\u2028]/);
    assert.equal(lines()[0]?.['node'], 'api\u202enode', 'the same text once parsed');
  });

  it('when the level variable is unset, then the level is info; when it names a level, that one', () => {
    const { stream } = capture();
    const logger = createProgramLogger({ program: 'p', command: 'c', stderr: stream });
    setLogLevel(logger, {}, 'ST_TEST_LOG_LEVEL');
    assert.equal(logger.level, 'info');
    for (const level of ['trace', 'debug', 'warn', 'error', 'fatal', 'silent']) {
      setLogLevel(logger, { ST_TEST_LOG_LEVEL: level }, 'ST_TEST_LOG_LEVEL');
      assert.equal(logger.level, level);
    }
  });

  for (const bad of ['', 'verbose', 'INFO', 'info\n']) {
    it(`when the level variable is ${JSON.stringify(bad)}, then setLogLevel throws a configuration error naming the variable and the level stays`, () => {
      const { stream } = capture();
      const logger = createProgramLogger({ program: 'p', command: 'c', stderr: stream });
      assert.throws(
        () => setLogLevel(logger, { ST_TEST_LOG_LEVEL: bad }, 'ST_TEST_LOG_LEVEL'),
        (error: unknown) => {
          assert.ok(error instanceof ProgramError);
          assert.equal(error.kind, 'config');
          assert.match(error.message, /^ST_TEST_LOG_LEVEL must be one of trace, debug, info, warn, error, fatal, silent; got "/);
          return true;
        },
      );
      assert.equal(logger.level, 'info');
    });
  }
});

describe('the programs’ logger on a terminal', () => {
  function terminal(isTTY: boolean): { stream: Writable; raw: () => string } {
    const chunks: string[] = [];
    const stream = Object.assign(
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          chunks.push(chunk.toString());
          done();
        },
      }),
      { isTTY },
    );
    return { stream, raw: () => chunks.join('') };
  }

  it('when stderr is a terminal, then each line reads as time, level, message and key=value, secrets still redacted', () => {
    const { stream, raw } = terminal(true);
    const logger = createProgramLogger({ program: 'st-api-test', command: 'reconcile', stderr: stream });
    logger.error(
      { exit: 69, token: 'consul-token', redisAuth: { password: 'hunter2' }, nodes: ['a', 'b'] },
      'Consul at 127.0.0.1:1: refused',
    );
    const text = raw();
    assert.match(text, /^\d\d:\d\d:\d\d ERROR Consul at 127\.0\.0\.1:1: refused exit=69 token=\[redacted\] /);
    assert.match(text, /redisAuth=\{"password":"\[redacted\]"\} nodes=\["a","b"\]\n$/);
    assert.doesNotMatch(text, /consul-token|hunter2|"level"|"time"|st-api-test/);
  });

  it('when stderr is not a terminal, or JSON is asked for on one, then the lines are JSON', () => {
    for (const [isTTY, format] of [
      [false, undefined],
      [true, 'json'],
    ] as const) {
      const { stream, raw } = terminal(isTTY);
      createProgramLogger({ program: 'p', command: 'c', stderr: stream, ...(format === undefined ? {} : { format }) }).info('hello');
      const line = JSON.parse(raw()) as Record<string, unknown>;
      assert.equal(line['msg'], 'hello');
      assert.equal(typeof line['time'], 'number');
    }
    const { stream, raw } = terminal(false);
    createProgramLogger({ program: 'p', command: 'c', stderr: stream, format: 'text' }).info('hello');
    assert.match(raw(), /^\d\d:\d\d:\d\d INFO {2}hello\n$/);
  });

  it('when a text line carries text from outside, then newlines, control and bidi characters are escaped and it stays one line', () => {
    const { stream, raw } = terminal(true);
    createProgramLogger({ program: 'p', command: 'c', stderr: stream }).warn(
      { node: 'api\u202enode', why: 'a\nb' },
      'x\n12:00:00 ERROR forged',
    );
    assert.equal(raw().split('\n').length, 2, raw());
    assert.doesNotMatch(raw(), /[\u202e]/);
    assert.match(raw(), /x\\u000a12:00:00 ERROR forged node="api\\u202enode" why="a\\nb"/);
  });

  it('when a bug is logged with its error, then the stack follows on indented lines', () => {
    const text = formatLogLine(
      JSON.stringify({ level: 50, time: 0, msg: 'TypeError: x', err: { type: 'TypeError', stack: 'TypeError: x\n    at f (a.ts:1:1)' } }),
    );
    assert.deepEqual(text.split('\n').slice(1), ['    TypeError: x', '        at f (a.ts:1:1)']);
  });
});
