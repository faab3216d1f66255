// Verify a Sigstore bundle with sigstore-js (@sigstore/verify, what npm and `npx sigstore verify`
// use) against a ClientTrustConfig's trusted root: an outside verifier for the tests.
//
// usage: node sigstore-verify.cjs TRUST_CONFIG.json BUNDLE.json ARTIFACT IDENTITY ISSUER
// Exit 0 and "OK" when the bundle verifies for the artifact and the identity; 1 and the error otherwise.
'use strict';

const fs = require('node:fs');
const { bundleFromJSON } = require('@sigstore/bundle');
const { TrustedRoot } = require('@sigstore/protobuf-specs');
const { Verifier, toSignedEntity, toTrustMaterial } = require('@sigstore/verify');

function main([trustConfigPath, bundlePath, artifactPath, identity, issuer]) {
  const trustConfig = JSON.parse(fs.readFileSync(trustConfigPath, 'utf-8'));
  const trustMaterial = toTrustMaterial(TrustedRoot.fromJSON(trustConfig.trustedRoot));
  const bundle = bundleFromJSON(JSON.parse(fs.readFileSync(bundlePath, 'utf-8')));
  const entity = toSignedEntity(bundle, fs.readFileSync(artifactPath));
  new Verifier(trustMaterial).verify(entity, {
    subjectAlternativeName: identity,
    extensions: { issuer },
  });
  // A DSSE bundle signs its statement, not the file: the file must be one of its subjects.
  if (bundle.content.$case === 'dsseEnvelope') {
    const statement = JSON.parse(bundle.content.dsseEnvelope.payload.toString('utf-8'));
    const digest = require('node:crypto').createHash('sha256').update(fs.readFileSync(artifactPath)).digest('hex');
    if (!statement.subject.some((subject) => subject.digest && subject.digest.sha256 === digest)) {
      throw new Error(`no subject of the statement has the sha256 of ${artifactPath}`);
    }
  }
  console.log(`OK: ${artifactPath}`);
}

try {
  main(process.argv.slice(2));
} catch (error) {
  console.error(`${error.code || error.name}: ${error.message}`);
  process.exit(1);
}
