import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { createLogger } from '../../api/logger.ts';

describe('logger', () => {
  it('when a log line carries a token, password, secret or private key, then they are redacted', () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const logger = createLogger({ level: 'info', program: 'test', destination });
    logger.info(
      {
        authorization: 'Bearer eyJhbGciOi.secret.sig',
        mysql: { password: 'hunter2' },
        signer: { secret: 'abcd', privateKey: '-----BEGIN' },
      },
      'config',
    );
    const text = lines.join('');
    assert.doesNotMatch(text, /eyJhbGciOi|hunter2|abcd|BEGIN/);
    assert.match(text, /\[redacted\]/);
    assert.match(text, /"program":"test"/);
  });
});
