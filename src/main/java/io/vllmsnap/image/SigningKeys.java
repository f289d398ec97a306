package io.vllmsnap.image;

import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.interfaces.EdECPrivateKey;
import java.security.spec.NamedParameterSpec;
import java.security.spec.PKCS8EncodedKeySpec;
import java.security.spec.X509EncodedKeySpec;
import java.util.HexFormat;
import java.util.List;

/**
 * Ed25519 keys for manifest signatures, through the JDK's own provider. The private key is a PKCS#8 PEM block
 * ({@code BEGIN PRIVATE KEY}, as {@code openssl genpkey -algorithm ed25519} writes it and as a Kubernetes Secret
 * holds it); public keys are X.509 SubjectPublicKeyInfo PEM blocks ({@code BEGIN PUBLIC KEY}). A key's ID is the
 * SHA-256 of its SubjectPublicKeyInfo bytes, so a signature says which key made it and keys can be rotated.
 */
public final class SigningKeys {

    public static final String ALGORITHM = "Ed25519";

    private SigningKeys() {
    }

    /** A new key pair as PEM: {@code [private PKCS#8, public SPKI]} (for tests, tools and a first install). */
    public static List<String> generatePem() {
        try {
            KeyPair pair = KeyPairGenerator.getInstance(ALGORITHM).generateKeyPair();
            return List.of(Pem.encode("PRIVATE KEY", pair.getPrivate().getEncoded()),
                    Pem.encode("PUBLIC KEY", pair.getPublic().getEncoded()));
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("the JDK has no " + ALGORITHM, e);
        }
    }

    /** Reads the first {@code PRIVATE KEY} block of PEM bytes; it must be an Ed25519 key. */
    public static PrivateKey privateKey(byte[] pem) {
        for (Pem.Block b : Pem.blocks(pem)) {
            if (b.type().equals("PRIVATE KEY")) {
                try {
                    return KeyFactory.getInstance(ALGORITHM).generatePrivate(new PKCS8EncodedKeySpec(b.der()));
                } catch (GeneralSecurityException e) {
                    throw new IllegalArgumentException("the PRIVATE KEY block is not an Ed25519 PKCS#8 key: "
                            + e.getMessage(), e);
                }
            }
        }
        throw new IllegalArgumentException("no '-----BEGIN PRIVATE KEY-----' block (PKCS#8 Ed25519) found");
    }

    /** Every {@code PUBLIC KEY} block of PEM bytes; each must be an Ed25519 key. */
    public static List<PublicKey> publicKeys(byte[] pem) {
        List<PublicKey> keys = new java.util.ArrayList<>();
        for (Pem.Block b : Pem.blocks(pem)) {
            if (b.type().equals("PUBLIC KEY")) {
                try {
                    keys.add(KeyFactory.getInstance(ALGORITHM).generatePublic(new X509EncodedKeySpec(b.der())));
                } catch (GeneralSecurityException e) {
                    throw new IllegalArgumentException("a PUBLIC KEY block is not an Ed25519 key: " + e.getMessage(),
                            e);
                }
            }
        }
        if (keys.isEmpty()) {
            throw new IllegalArgumentException("no '-----BEGIN PUBLIC KEY-----' block (Ed25519) found");
        }
        return keys;
    }

    /**
     * The public key of an Ed25519 private key. An Ed25519 private key is its 32-byte seed and the public key follows
     * from it (RFC 8032 5.1.5); the JDK offers no direct call, so the key pair is generated again from that seed.
     * So a Secret needs to hold only the private key.
     */
    public static PublicKey publicKeyOf(PrivateKey key) {
        if (!(key instanceof EdECPrivateKey ed) || ed.getBytes().isEmpty()) {
            throw new IllegalArgumentException("not an Ed25519 private key");
        }
        byte[] seed = ed.getBytes().get();
        try {
            KeyPairGenerator gen = KeyPairGenerator.getInstance(ALGORITHM);
            gen.initialize(NamedParameterSpec.ED25519, new SeedRandom(seed));
            return gen.generateKeyPair().getPublic();
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("the JDK has no " + ALGORITHM, e);
        }
    }

    /** PEM of a public key, e.g. to hand the agents the key that checks what the operator signs. */
    public static String publicKeyPem(PublicKey key) {
        return Pem.encode("PUBLIC KEY", key.getEncoded());
    }

    /** {@code sha256:<hex>} of the key's SubjectPublicKeyInfo bytes. */
    public static String keyId(PublicKey key) {
        return "sha256:" + HexFormat.of().formatHex(Digests.sha256().digest(key.getEncoded()));
    }

    /** Hands the key pair generator exactly the seed bytes, once. */
    private static final class SeedRandom extends SecureRandom {
        private final byte[] seed;

        SeedRandom(byte[] seed) {
            this.seed = seed;
        }

        @Override
        public void nextBytes(byte[] bytes) {
            if (bytes.length != seed.length) {
                throw new IllegalStateException("expected a request for " + seed.length + " seed bytes");
            }
            System.arraycopy(seed, 0, bytes, 0, seed.length);
        }
    }
}
