import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  createNginxSigner,
  DEFAULT_NGINX_EXPRESSION,
  renderSecureLinkExpression,
  secureLinkMd5,
  secureLinkSecretHash,
  secureLinkSecretPath,
} from '../../api/signing/nginx-secure-link.ts';
import { EXPIRES_AT, fixture, param, playbackRequest, sh } from './helpers.ts';

interface NginxDocs {
  cases: [
    {
      id: string;
      input: { request: string; remote_addr: string; uri: string; expires: number };
      md5_input_string: string;
      expected: { md5_base64url_nopad: string };
    },
    {
      id: string;
      config: { location: string; secure_link_secret: string };
      input: { request: string; link: string; secret: string };
      md5_input_string: string;
      expected: { md5_hex: string };
    },
  ];
}
const [md5Case, secretCase] = fixture<NginxDocs>('nginx-secure-link.nginx-docs.json').cases;

/** The nginx docs' own recipe, run through openssl. */
const docRecipe = (expression: string): string => sh('openssl md5 -binary | openssl base64 | tr +/ -_ | tr -d =', expression);

describe('nginx secure_link: doc examples', () => {
  test('when the doc expression "$secure_link_expires$uri$remote_addr secret" is rendered, then it is the documented MD5 input', () => {
    const expression = renderSecureLinkExpression('$secure_link_expires$uri$remote_addr $secret', {
      secure_link_expires: String(md5Case.input.expires),
      uri: md5Case.input.uri,
      remote_addr: md5Case.input.remote_addr,
      secret: 'secret',
    });
    assert.equal(expression, md5Case.md5_input_string);
  });

  test('when hashing the doc secure_link_md5 example, then the result is _e4Nc3iduzkWRm01TBBNYw as in the request', () => {
    const hash = secureLinkMd5(md5Case.md5_input_string);
    assert.equal(hash, md5Case.expected.md5_base64url_nopad);
    assert.ok(md5Case.input.request.includes(`md5=${hash}&expires=${md5Case.input.expires}`));
  });

  test('when hashing the doc secure_link_secret example, then hex MD5 and path match /p/5e81…/link', () => {
    assert.equal(secureLinkSecretHash(secretCase.input.link, secretCase.input.secret), secretCase.expected.md5_hex);
    assert.equal(
      secureLinkSecretPath(secretCase.config.location, secretCase.input.link, secretCase.input.secret),
      secretCase.input.request,
    );
  });
});

describe('nginx secure_link: expression templates', () => {
  test('when a variable is written as ${name}, then it is substituted like $name', () => {
    assert.equal(renderSecureLinkExpression('${secure_link_expires}x$scope', { secure_link_expires: '1', scope: '/a/' }), '1x/a/');
  });

  test('when a template uses an unknown variable or lacks a value, then rendering throws', () => {
    assert.throws(
      () => renderSecureLinkExpression('$secure_link_expires$host', { secure_link_expires: '1' }),
      /unsupported variable \$host/,
    );
    assert.throws(() => renderSecureLinkExpression('$scope', {}), /no value for \$scope/);
  });

  test('when the playback expression signs $uri or lacks $secret/$scope/$secure_link_expires, then creating the signer throws', () => {
    const keys = [{ id: 'k', active: true, material: 's' }];
    const make = (expression: string) => () => createNginxSigner({ expression, hashParam: 'md5', expiresParam: 'expires', keys });
    assert.throws(make('$secure_link_expires$uri$scope $secret'), /\$scope, not \$uri/);
    assert.throws(make('$secure_link_expires$scope'), /\$secret/);
    assert.throws(make('$secure_link_expires $secret'), /\$scope/);
    assert.throws(make('$scope $secret'), /\$secure_link_expires/);
  });
});

describe('nginx secure_link: playback UrlSigner', () => {
  const signer = createNginxSigner({
    expression: DEFAULT_NGINX_EXPRESSION,
    hashParam: 'md5',
    expiresParam: 'expires',
    keys: [{ id: 'n1', active: true, material: 'my-secret' }],
  });
  const url = signer.sign(playbackRequest());
  // nginx accepts a link through its whole expiry second, so we emit one second earlier.
  const expires = EXPIRES_AT.getTime() / 1000 - 1;

  test('when signing playback, then the URL is origin + manifestPath + ?md5=…&expires=… with expires one second before expiresAt', () => {
    assert.ok(url.startsWith('https://cdn.example.com/vod/title-42/master.m3u8?md5='), url);
    assert.equal(param(url, 'expires'), String(expires));
  });

  test('when signing playback, then md5 is the openssl doc recipe over "$expires$scope secret" (the scope, not the file)', () => {
    assert.equal(param(url, 'md5'), docRecipe(`${expires}/vod/title-42/ my-secret`));
  });

  test('when a path token is made, then it is /t/<the same md5>/<expires>, for a stock secure_link regex location', () => {
    assert.equal(signer.pathToken?.(playbackRequest()), `/t/${docRecipe(`${expires}/vod/title-42/ my-secret`)}/${expires}`);
  });

  test('when a segment in the same scope is signed, then it gets the identical token', () => {
    const segment = signer.sign(playbackRequest({ manifestPath: '/vod/title-42/720p/seg-1.ts' }));
    assert.equal(segment.slice(segment.indexOf('?')), url.slice(url.indexOf('?')));
  });

  test('when the expression binds $remote_addr, then the client IP is hashed and required', () => {
    const bound = createNginxSigner({
      expression: '$secure_link_expires$scope$remote_addr $secret',
      hashParam: 'h',
      expiresParam: 'e',
      keys: [{ id: 'n1', active: true, material: 'my-secret' }],
    });
    const signed = bound.sign(playbackRequest({ clientIp: '127.0.0.1' }));
    assert.equal(param(signed, 'h'), docRecipe(`${expires}/vod/title-42/127.0.0.1 my-secret`));
    assert.throws(() => bound.sign(playbackRequest()), /clientIp/);
  });
});
