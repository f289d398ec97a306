package io.vllmsnap.image;

import java.security.GeneralSecurityException;
import java.security.PublicKey;
import java.security.Signature;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The public keys a node accepts manifest signatures from, by key ID. More than one during a key rotation: images
 * signed with the old key stay usable until it is removed.
 */
public final class TrustedKeys {

    private final Map<String, PublicKey> byId = new LinkedHashMap<>();

    public TrustedKeys(List<PublicKey> keys) {
        if (keys.isEmpty()) {
            throw new IllegalArgumentException("at least one trusted key is needed");
        }
        for (PublicKey k : keys) {
            if (!SigningKeys.ALGORITHM.equalsIgnoreCase(k.getAlgorithm())
                    && !"EdDSA".equalsIgnoreCase(k.getAlgorithm())) {
                throw new IllegalArgumentException("only " + SigningKeys.ALGORITHM + " keys are accepted, not "
                        + k.getAlgorithm());
            }
            byId.put(SigningKeys.keyId(k), k);
        }
    }

    /** From PEM bytes holding one or more {@code PUBLIC KEY} blocks. */
    public static TrustedKeys fromPem(byte[] pem) {
        return new TrustedKeys(SigningKeys.publicKeys(pem));
    }

    public List<String> keyIds() {
        return List.copyOf(byId.keySet());
    }

    /**
     * Checks a signature file's bytes against manifest bytes; returns the signing key's ID.
     *
     * @throws ImageException {@code BadSignature} when malformed, made by an unknown key or not matching
     */
    public String verify(byte[] manifestBytes, byte[] signatureFile) throws ImageException {
        ManifestSignature sig = ManifestSignature.parse(signatureFile);
        if (!SigningKeys.ALGORITHM.equals(sig.algorithm())) {
            throw new ImageException(ImageException.Reason.BadSignature, "the manifest is signed with "
                    + sig.algorithm() + "; only " + SigningKeys.ALGORITHM + " is accepted");
        }
        PublicKey key = byId.get(sig.keyId());
        if (key == null) {
            throw new ImageException(ImageException.Reason.BadSignature, "the manifest is signed by key "
                    + sig.keyId() + ", which this node does not trust (trusted: " + keyIds() + ")");
        }
        try {
            Signature s = Signature.getInstance(SigningKeys.ALGORITHM);
            s.initVerify(key);
            s.update(manifestBytes);
            if (s.verify(sig.signature())) {
                return sig.keyId();
            }
        } catch (GeneralSecurityException e) {
            // a signature of the wrong length or encoding: the same answer as a wrong one
        }
        throw new ImageException(ImageException.Reason.BadSignature, "the signature of " + ImageFiles.MANIFEST
                + " does not verify with key " + sig.keyId() + ": the manifest was changed after signing");
    }
}
