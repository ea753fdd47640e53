// Generates ../../../proxy/inbound/testdata/webhook-vectors.json: whole webhook
// bodies as Modulus Labs would post them, sealed with panva/jose (the Node
// library the provider documents), for proxy/inbound/vectors_test.go, plus
// Standard Webhooks signatures computed with Node's own HMAC.
//
//   cd crypto/testdata/node && npm ci && npm run generate:webhook
//
// Every key and secret here is an obviously fake test value. Tokens differ on
// every run (fresh CEK and IV); any run's output is a valid set of vectors.
import { CompactEncrypt } from 'jose';
import { createHmac, createHash } from 'node:crypto';

const enc = new TextEncoder();
const keys = [
  { name: 'decryption_key[1]', material: 'TEST-ONLY-fake-key-do-not-use-32', encoding: 'utf8' },
  { name: 'decryption_key[2]', material: 'TEST-ONLY-rotated-key-not-real-2', encoding: 'utf8' },
];
for (const k of keys) {
  if (enc.encode(k.material).length !== 32) throw new Error(`${k.name} is not 32 bytes`);
}
const key1 = enc.encode(keys[0].material);
const key2 = enc.encode(keys[1].material);
const otherKey = createHash('sha256').update('qrphgate fake test key: not configured').digest();
const profile = { alg: 'A256KW', enc: 'A256CBC-HS512' };

const seal = (plaintext, key, header = profile) =>
  new CompactEncrypt(enc.encode(plaintext)).setProtectedHeader(header).encrypt(key);

// The two payload shapes the provider's pages show (modulus-api.md 6.3).
const payloadPage = JSON.stringify({
  action: 'QRPH_SUCCESS', referenceNumber: 'ORDER-NODE-1', amount: 9800, currency: 'PHP',
  timestamp: '2026-01-15T10:30:00Z',
});
const securityPage = JSON.stringify({
  transactionId: 'a78efd32-de3b-4854-b599-11ae9f98f97e', status: 'QRPH_DECLINED', amount: 50000, currency: 'PHP',
});
const rotated = JSON.stringify({ action: 'QRPH_SUCCESS', referenceNumber: 'ORDER-NODE-2', amount: 100 });
const withCode = JSON.stringify({ action: 'QRPH_SUCCESS', referenceNumber: 'ORDER-NODE-3', amount: 100 });

const body = (obj) => JSON.stringify(obj);
// Changes one base64url character of segment i (never the last one, whose
// low bits may be padding and decode to the same bytes).
const tamper = (tok, i) => {
  const parts = tok.split('.');
  const s = parts[i];
  parts[i] = s[0] + (s[1] === 'A' ? 'B' : 'A') + s.slice(2);
  return parts.join('.');
};

const vectors = [];
const add = (name, b, expect, extra = {}) => vectors.push({ name, body: b, headers: {}, ...expect, ...extra });
const ok = (payload, key) => ({ status: 200, result: 'accepted', payload, key });

add('data envelope, payload-page shape', body({ data: await seal(payloadPage, key1) }), ok(payloadPage, 'decryption_key[1]'));
add('Token envelope, security-page shape', body({ Token: await seal(securityPage, key1) }), ok(securityPage, 'decryption_key[1]'));
add('second configured key (rotation)', body({ data: await seal(rotated, key2) }), ok(rotated, 'decryption_key[2]'));
add('activation-code header passed on', body({ data: await seal(withCode, key1) }), ok(withCode, 'decryption_key[1]'),
  { headers: { 'activation-code': 'TEST-0000-0000-0001' } });
add('unknown envelope member ignored', body({ data: await seal(JSON.stringify({ action: 'QRPH_SUCCESS', referenceNumber: 'ORDER-NODE-4' }), key1), sentAt: 1 }),
  ok(JSON.stringify({ action: 'QRPH_SUCCESS', referenceNumber: 'ORDER-NODE-4' }), 'decryption_key[1]'));

const t = await seal(JSON.stringify({ action: 'QRPH_SUCCESS', referenceNumber: 'ORDER-NODE-BAD' }), key1);
add('tampered ciphertext', body({ data: tamper(t, 3) }), { status: 400, result: 'decrypt_failed' });
add('tampered tag', body({ data: tamper(t, 4) }), { status: 400, result: 'decrypt_failed' });
add('tampered encrypted key', body({ data: tamper(t, 1) }), { status: 400, result: 'decrypt_failed' });
add('encrypted with a key not configured', body({ data: await seal(payloadPage, otherKey) }), { status: 400, result: 'decrypt_failed' });
add('alg A128KW', body({ data: await seal(payloadPage, otherKey.subarray(0, 16), { alg: 'A128KW', enc: 'A256CBC-HS512' }) }),
  { status: 400, result: 'bad_token' });
add('alg dir', body({ data: await seal(payloadPage, Buffer.concat([otherKey, otherKey]), { alg: 'dir', enc: 'A256CBC-HS512' }) }),
  { status: 400, result: 'bad_token' });
add('enc A256GCM', body({ data: await seal(payloadPage, key1, { alg: 'A256KW', enc: 'A256GCM' }) }), { status: 400, result: 'bad_token' });
add('zip DEF', body({ data: await seal(payloadPage, key1, { ...profile, zip: 'DEF' }) }), { status: 400, result: 'bad_token' });
add('both data and Token', body({ data: t, Token: t }), { status: 400, result: 'bad_envelope' });
add('lower-case token member', body({ token: t }), { status: 400, result: 'bad_envelope' });
add('data is not a string', body({ data: { token: t } }), { status: 400, result: 'bad_envelope' });
add('payload is an array', body({ data: await seal(JSON.stringify([payloadPage]), key1) }), { status: 422, result: 'invalid_payload' });
add('payload without a reference', body({ data: await seal(JSON.stringify({ action: 'QRPH_SUCCESS', amount: 1 }), key1) }),
  { status: 422, result: 'invalid_payload' });
add('payload without an action', body({ data: await seal(JSON.stringify({ referenceNumber: 'ORDER-1' }), key1) }),
  { status: 422, result: 'invalid_payload' });
add('payload is not JSON', body({ data: await seal('QRPH_SUCCESS ORDER-1', key1) }), { status: 422, result: 'invalid_payload' });

// Standard Webhooks signatures, computed with Node's HMAC (not our Go code).
const sign = (keyBytes, id, ts, b) =>
  'v1,' + createHmac('sha256', keyBytes).update(`${id}.${ts}.${b}`).digest('base64');
const whsecKey = createHash('sha256').update('qrphgate fake signing key').digest().subarray(0, 24);
const rawSecret = 'TEST-ONLY-fake-signing-secret-not-real-000';
const signatures = [
  { secret: 'whsec_' + whsecKey.toString('base64'), id: 'evt_01JH8Z3Q4R5S6T7V8W9X0Y1Z2A', timestamp: 1768473000,
    body: payloadPage },
  { secret: rawSecret, id: 'evt_01JH8Z3Q4R5S6T7V8W9X0Y1Z2B', timestamp: 1768473001, body: securityPage },
].map((s) => ({
  ...s,
  signature: sign(s.secret.startsWith('whsec_') ? Buffer.from(s.secret.slice(6), 'base64') : Buffer.from(s.secret), s.id, s.timestamp, s.body),
}));

process.stdout.write(JSON.stringify({
  generator: 'crypto/testdata/node/gen-webhook-vectors.mjs',
  library: 'jose@6.2.18',
  keys,
  vectors,
  signatures,
}, null, 2) + '\n');
