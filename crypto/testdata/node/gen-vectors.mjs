// Generates ../vectors.json: compact JWE tokens made with panva/jose, the Node
// library the Modulus Labs docs use, for crypto/interop_test.go to decrypt.
//
//   cd crypto/testdata/node && npm ci && npm run generate
//
// Every key here is an obviously fake test key. Tokens differ on every run
// (fresh CEK and IV); any run's output is a valid set of vectors.
import { CompactEncrypt } from 'jose';
import { createHash } from 'node:crypto';

const enc = new TextEncoder();
const utf8Key = 'TEST-ONLY-fake-key-do-not-use-32';
const derived = (label) => createHash('sha256').update(label).digest();
const b64Key = derived('qrphgate fake test key: base64');
const b64urlKey = derived('qrphgate fake test key: base64url');
const hexKey = derived('qrphgate fake test key: hex');
const otherKey = derived('qrphgate fake test key: some other key');

async function seal(plaintext, key, header) {
  return new CompactEncrypt(enc.encode(plaintext)).setProtectedHeader(header).encrypt(key);
}

const profile = { alg: 'A256KW', enc: 'A256CBC-HS512' };
const createRequest = JSON.stringify({
  activationCode: 'TEST-0000-0000-0001',
  currency: 'PHP',
  amount: '98.00',
  merchantReferenceNumber: '5e91bc6c-f7e2-4a39-ae0e-5e93985c94a4',
});
const createResponse = JSON.stringify({
  id: 'a78efd32-de3b-4854-b599-11ae9f98f97e',
  qrBody: Buffer.alloc(3000, 7).toString('base64'), // stands in for a PNG of a few KB
});
const webhook = JSON.stringify({
  action: 'QRPH_SUCCESS',
  referenceNumber: 'ORDER-12345',
  amount: 9800,
  currency: 'PHP',
  timestamp: '2026-01-15T10:30:00Z',
});

const vectors = [];
async function add(name, plaintext, keyBytes, keyMaterial, keyEncoding, header, expect) {
  vectors.push({
    name,
    key: keyMaterial,
    key_encoding: keyEncoding,
    header,
    plaintext,
    token: await seal(plaintext, keyBytes, header),
    expect,
  });
}

await add('utf8 key, create request', createRequest, enc.encode(utf8Key), utf8Key, 'utf8', profile, 'ok');
await add('utf8 key, create response with qrBody', createResponse, enc.encode(utf8Key), utf8Key, 'utf8', profile, 'ok');
await add('base64 key, webhook payload', webhook, b64Key, b64Key.toString('base64'), 'base64', profile, 'ok');
await add('base64url key, webhook payload', webhook, b64urlKey, b64urlKey.toString('base64url'), 'base64url', profile, 'ok');
await add('hex key, webhook payload', webhook, hexKey, hexKey.toString('hex'), 'hex', profile, 'ok');
await add('cty and kid present', webhook, enc.encode(utf8Key), utf8Key, 'utf8',
  { ...profile, cty: 'application/json', kid: 'test-kid-1' }, 'ok');
await add('empty JSON object', '{}', enc.encode(utf8Key), utf8Key, 'utf8', profile, 'ok');
await add('encrypted with another key', webhook, otherKey, utf8Key, 'utf8', profile, 'wrong_key');
await add('A128KW instead of A256KW', webhook, derived('a128').subarray(0, 16), utf8Key, 'utf8',
  { alg: 'A128KW', enc: 'A256CBC-HS512' }, 'wrong_alg');
await add('dir instead of A256KW', webhook, Buffer.concat([derived('dir1'), derived('dir2')]), utf8Key, 'utf8',
  { alg: 'dir', enc: 'A256CBC-HS512' }, 'wrong_alg');
await add('A256GCM instead of A256CBC-HS512', webhook, enc.encode(utf8Key), utf8Key, 'utf8',
  { alg: 'A256KW', enc: 'A256GCM' }, 'wrong_enc');
await add('A128CBC-HS256 instead of A256CBC-HS512', webhook, enc.encode(utf8Key), utf8Key, 'utf8',
  { alg: 'A256KW', enc: 'A128CBC-HS256' }, 'wrong_enc');

process.stdout.write(JSON.stringify({
  generator: 'crypto/testdata/node/gen-vectors.mjs',
  library: 'jose@6.2.18',
  vectors,
}, null, 2) + '\n');
