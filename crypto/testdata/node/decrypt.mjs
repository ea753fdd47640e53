// Decrypts tokens made by our Go code with panva/jose, the second
// implementation crypto/interop_test.go checks us against.
// stdin: [{"key_hex": "...", "token": "..."}]; stdout: [{"plaintext": "..."} | {"error": "..."}]
import { compactDecrypt } from 'jose';

const input = JSON.parse(await new Promise((resolve) => {
  let data = '';
  process.stdin.on('data', (c) => { data += c; });
  process.stdin.on('end', () => resolve(data));
}));
const out = [];
for (const { key_hex: keyHex, token } of input) {
  try {
    const { plaintext, protectedHeader } = await compactDecrypt(token, Buffer.from(keyHex, 'hex'), {
      keyManagementAlgorithms: ['A256KW'],
      contentEncryptionAlgorithms: ['A256CBC-HS512'],
    });
    out.push({ plaintext: new TextDecoder().decode(plaintext), header: protectedHeader });
  } catch (e) {
    out.push({ error: String(e.code || e.message) });
  }
}
process.stdout.write(JSON.stringify(out));
