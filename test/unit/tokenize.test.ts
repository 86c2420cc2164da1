// Tokenized manifests: every media URI points at the CDN with the token; playlists stay relative so
// they come back to st-api under its own path token. Pure functions of the manifest text.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileDash, compileHls, ManifestFormatError } from '../../api/manifests/tokenize.ts';

const CDN = 'https://cdn.example.com';
const QUERY = 'md5=abc&expires=1796059719';

describe('HLS media playlist', () => {
  const playlist = [
    '#EXTM3U',
    '#EXT-X-VERSION:7',
    '#EXT-X-TARGETDURATION:1',
    '#EXT-X-PLAYLIST-TYPE:VOD',
    '#EXT-X-MAP:URI="init.mp4"',
    '#EXTINF:1.000000,',
    'seg-1.m4s',
    '#EXTINF:1.000000,',
    '../480p/seg-2.m4s?v=2',
    '#EXTINF:1.000000,',
    'https://other.example.net/ad.m4s',
    '#EXT-X-ENDLIST',
    '',
  ].join('\n');
  const compiled = compileHls(playlist, { documentPath: '/vod/t/hls/1080p/1080p/index.m3u8', cdnOrigin: CDN });

  it('when rendered, then each segment and the init segment are absolute CDN URLs with the token, resolved against the playlist', () => {
    const lines = compiled.render(QUERY).split('\n');
    assert.equal(lines[4], `#EXT-X-MAP:URI="${CDN}/vod/t/hls/1080p/1080p/init.mp4?${QUERY}"`);
    assert.equal(lines[6], `${CDN}/vod/t/hls/1080p/1080p/seg-1.m4s?${QUERY}`);
    assert.equal(lines[8], `${CDN}/vod/t/hls/1080p/480p/seg-2.m4s?v=2&${QUERY}`, 'an existing query is kept and the token joined with &');
  });

  it('when a URI is absolute (another host), then it is left alone; tags and the end are unchanged', () => {
    const lines = compiled.render(QUERY).split('\n');
    assert.equal(lines[10], 'https://other.example.net/ad.m4s');
    assert.deepEqual(lines.slice(0, 4), playlist.split('\n').slice(0, 4));
    assert.equal(lines.at(-2), '#EXT-X-ENDLIST');
    assert.equal(compiled.slots, 3);
  });

  it('when CRLF line ends are used, then they are kept', () => {
    const crlf = compileHls('#EXTM3U\r\n#EXTINF:1,\r\nseg-1.m4s\r\n', { documentPath: '/a/b.m3u8', cdnOrigin: CDN });
    assert.equal(crlf.render('t=1'), `#EXTM3U\r\n#EXTINF:1,\r\n${CDN}/a/seg-1.m4s?t=1\r\n`);
  });

  it('when rendered twice with different tokens, then each rendering carries its own token', () => {
    assert.match(compiled.render('a=1'), /seg-1\.m4s\?a=1$/m);
    assert.match(compiled.render('b=2'), /seg-1\.m4s\?b=2$/m);
  });
});

describe('HLS master playlist', () => {
  const master = [
    '#EXTM3U',
    '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",NAME="en",URI="audio/index.m3u8"',
    '#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=854x480,CODECS="avc1.42c01e"',
    '480p/index.m3u8',
    '#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=90000,URI="480p/iframes.m3u8"',
    '',
  ].join('\n');

  it('when rendered, then variant and rendition playlists stay relative (they resolve back to st-api under its token)', () => {
    const compiled = compileHls(master, { documentPath: '/vod/t/hls/480p/master.m3u8', cdnOrigin: CDN });
    assert.equal(compiled.render(QUERY), master);
    assert.equal(compiled.slots, 0);
  });
});

describe('DASH MPD', () => {
  const mpd = `<?xml version="1.0" encoding="utf-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT4S">
  <Period id="0">
    <AdaptationSet mimeType="video/mp4">
      <SegmentTemplate timescale="12288" duration="12288" initialization="$RepresentationID$/init.mp4" media='$RepresentationID$/seg-$Number$.m4s' startNumber="1"/>
      <Representation id="480p" bandwidth="800000" width="854" height="480"/>
    </AdaptationSet>
  </Period>
</MPD>
`;
  const compiled = compileDash(mpd, { documentPath: '/vod/t/dash/480p/manifest.mpd', cdnOrigin: CDN });
  const rendered = compiled.render(QUERY);

  it('when rendered, then the MPD gets a BaseURL at the CDN directory it came from', () => {
    assert.match(rendered, /<BaseURL>https:\/\/cdn\.example\.com\/vod\/t\/dash\/480p\/<\/BaseURL>\s*<Period/);
  });

  it('when rendered, then initialization and media templates carry the token, XML-escaped, quotes kept', () => {
    assert.match(rendered, /initialization="\$RepresentationID\$\/init\.mp4\?md5=abc&amp;expires=1796059719"/);
    assert.match(rendered, /media='\$RepresentationID\$\/seg-\$Number\$\.m4s\?md5=abc&amp;expires=1796059719'/);
    assert.equal(compiled.slots, 2);
  });

  it('when the MPD already has a relative MPD-level BaseURL, then it is resolved against the CDN directory', () => {
    const based = compileDash(mpd.replace('<Period', '<BaseURL>media/</BaseURL>\n  <Period'), {
      documentPath: '/vod/t/dash/480p/manifest.mpd',
      cdnOrigin: CDN,
    });
    assert.match(based.render(QUERY), /<BaseURL>https:\/\/cdn\.example\.com\/vod\/t\/dash\/480p\/media\/<\/BaseURL>/);
  });
});

describe('when the origin answers something that is not a manifest', () => {
  it('then compiling refuses it', () => {
    assert.throws(() => compileHls('<html>502 Bad Gateway</html>', { documentPath: '/a.m3u8', cdnOrigin: CDN }), ManifestFormatError);
    assert.throws(() => compileDash('#EXTM3U', { documentPath: '/a.mpd', cdnOrigin: CDN }), ManifestFormatError);
  });
});
