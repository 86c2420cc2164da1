import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ladder } from '../../api/catalog/dataset.ts';
import type { Content, DeviceClass } from '../../api/catalog/types.ts';
import { chooseProtocol, chooseRendition, heightOf, qualityLabel } from '../../api/playback/rendition.ts';

const both: Content = { id: 'c1', title: 'Both', renditions: ladder('c1', ['hls', 'dash'], [2160, 1080, 720, 480]) };
const dashOnly: Content = { id: 'c2', title: 'DASH only', renditions: ladder('c2', ['dash'], [1080, 480]) };
const sdOnly: Content = { id: 'c3', title: 'SD only', renditions: ladder('c3', ['hls'], [480]) };
// UHD only in DASH: an HLS player must not be handed a DASH manifest because it is the better one.
const uhdInDashOnly: Content = {
  id: 'c4',
  title: 'UHD in DASH only',
  renditions: [...ladder('c4', ['dash'], [2160, 1080]), ...ladder('c4', ['hls'], [720])],
};
// Rungs stored lowest first, as a catalog may return them.
const ascending: Content = { id: 'c5', title: 'Ascending', renditions: ladder('c5', ['hls'], [480, 720, 1080]) };
const ios: DeviceClass = { name: 'ios', maxHeight: 2160, protocols: ['hls'], defaultProtocol: 'hls', enabled: true };
const android: DeviceClass = { name: 'android', maxHeight: 1080, protocols: ['dash', 'hls'], defaultProtocol: 'dash', enabled: true };
const web: DeviceClass = { name: 'web', maxHeight: 1080, protocols: ['hls', 'dash'], defaultProtocol: 'hls', enabled: true };

describe('chooseProtocol', () => {
  it('when no protocol is asked, then the device default is used', () => {
    assert.deepEqual(chooseProtocol(undefined, android, both), { ok: true, value: 'dash' });
  });
  it('when the content lacks the device default, then another protocol the device plays is used', () => {
    assert.deepEqual(chooseProtocol(undefined, web, dashOnly), { ok: true, value: 'dash' });
  });
  it('when the device plays no protocol the content has, then PROTOCOL_NOT_AVAILABLE', () => {
    assert.deepEqual(chooseProtocol(undefined, ios, dashOnly), { ok: false, code: 'PROTOCOL_NOT_AVAILABLE' });
  });
  it('when a protocol the device does not play is asked, then PROTOCOL_NOT_SUPPORTED', () => {
    assert.deepEqual(chooseProtocol('dash', ios, both), { ok: false, code: 'PROTOCOL_NOT_SUPPORTED' });
  });
  it('when a protocol the content is not packaged in is asked, then PROTOCOL_NOT_AVAILABLE', () => {
    assert.deepEqual(chooseProtocol('hls', android, dashOnly), { ok: false, code: 'PROTOCOL_NOT_AVAILABLE' });
  });
  it('when a protocol the device plays and the content has is asked, then it wins over the device default', () => {
    assert.deepEqual(chooseProtocol('hls', android, both), { ok: true, value: 'hls' });
  });
});

describe('chooseRendition', () => {
  it('when every ceiling allows UHD, then the 2160p manifest is chosen', () => {
    const choice = chooseRendition(both.renditions, 'hls', [heightOf('auto'), 2160, 2160]);
    assert.equal(choice.ok && choice.value.height, 2160);
    assert.equal(choice.ok && choice.value.protocol, 'hls');
  });
  it('when the lowest ceiling is the right (SD purchase), then the best rung under it is chosen', () => {
    const choice = chooseRendition(both.renditions, 'dash', [heightOf('auto'), 480, 2160]);
    assert.equal(choice.ok && choice.value.height, 480);
  });
  it('when the request asks 720p on a 1080p device with a UHD right, then 720p', () => {
    const choice = chooseRendition(both.renditions, 'hls', [heightOf('720p'), 2160, 1080]);
    assert.equal(choice.ok && choice.value.height, 720);
  });
  it('when the ceiling falls between rungs, then the rung below it', () => {
    const choice = chooseRendition(both.renditions, 'hls', [heightOf('1440p'), 2160, 2160]);
    assert.equal(choice.ok && choice.value.height, 1080);
  });
  it('when no rung is under the ceiling, then QUALITY_NOT_AVAILABLE', () => {
    assert.deepEqual(chooseRendition(sdOnly.renditions, 'hls', [heightOf('360p'), 2160, 2160]), {
      ok: false,
      code: 'QUALITY_NOT_AVAILABLE',
    });
  });
  it('when a better rung exists only in another protocol, then the best rung of the chosen protocol', () => {
    const choice = chooseRendition(uhdInDashOnly.renditions, 'hls', [heightOf('auto'), 2160, 2160]);
    assert.deepEqual(choice.ok && [choice.value.protocol, choice.value.height], ['hls', 720]);
  });
  it('when the rungs come lowest first, then the best rung is still chosen', () => {
    const choice = chooseRendition(ascending.renditions, 'hls', [heightOf('auto'), 2160, 2160]);
    assert.equal(choice.ok && choice.value.height, 1080);
  });
});

describe('quality labels', () => {
  it('when a quality is asked, then its ceiling is its height; auto has none', () => {
    assert.equal(heightOf('720p'), 720);
    assert.equal(heightOf('2160p'), 2160);
    assert.equal(heightOf('auto'), Number.POSITIVE_INFINITY);
  });
  it('when a rendition is chosen, then its quality reads as the client asks for it', () => {
    assert.equal(qualityLabel(1080), '1080p');
    assert.equal(qualityLabel(2160), '2160p');
  });
});
