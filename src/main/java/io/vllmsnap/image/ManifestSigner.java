package io.vllmsnap.image;

import java.io.IOException;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.Signature;

/**
 * Signs manifest bytes with the operator's Ed25519 key. Only the holder of the private key signs; nodes hold only
 * public keys ({@link TrustedKeys}), so a node cannot make an image that other nodes would restore.
 */
public final class ManifestSigner {

    private final PrivateKey key;
    private final String keyId;

    public ManifestSigner(PrivateKey key) {
        this.key = key;
        this.keyId = SigningKeys.keyId(SigningKeys.publicKeyOf(key));
    }

    /** From the PEM bytes of a Secret's key (PKCS#8 Ed25519). */
    public static ManifestSigner fromPem(byte[] privateKeyPem) {
        return new ManifestSigner(SigningKeys.privateKey(privateKeyPem));
    }

    public String keyId() {
        return keyId;
    }

    public PublicKey publicKey() {
        return SigningKeys.publicKeyOf(key);
    }

    /** The signature file's bytes for these manifest bytes. */
    public byte[] sign(byte[] manifestBytes) {
        try {
            Signature s = Signature.getInstance(SigningKeys.ALGORITHM);
            s.initSign(key);
            s.update(manifestBytes);
            return new ManifestSignature(SigningKeys.ALGORITHM, keyId, s.sign()).toBytes();
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("signing with " + SigningKeys.ALGORITHM + " failed", e);
        }
    }

    /** Signs the {@code manifest.json} of an image directory, writing {@code manifest.json.sig} beside it. */
    public void signImage(Path imageDir) throws IOException {
        byte[] manifest = java.nio.file.Files.readAllBytes(imageDir.resolve(ImageFiles.MANIFEST));
        PrivateFiles.writeAtomically(imageDir.resolve(ImageFiles.SIGNATURE), sign(manifest));
    }
}
