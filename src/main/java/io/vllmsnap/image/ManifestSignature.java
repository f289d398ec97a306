package io.vllmsnap.image;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.util.Base64;

/**
 * The content of {@code manifest.json.sig}: a small JSON object
 * <pre>{"algorithm": "Ed25519", "keyId": "sha256:&lt;hex of the signer's SubjectPublicKeyInfo&gt;",
 *  "signature": "&lt;base64 of the 64 signature bytes over manifest.json's exact bytes&gt;"}</pre>
 */
public record ManifestSignature(String algorithm, String keyId, byte[] signature) {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int MAX_BYTES = 64 << 10;

    public byte[] toBytes() {
        ObjectNode o = JSON.createObjectNode();
        o.put("algorithm", algorithm);
        o.put("keyId", keyId);
        o.put("signature", Base64.getEncoder().encodeToString(signature));
        try {
            return JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(o);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Parses a signature file; anything malformed is a {@code BadSignature}. */
    public static ManifestSignature parse(byte[] bytes) throws ImageException {
        if (bytes.length > MAX_BYTES) {
            throw bad("it has " + bytes.length + " bytes");
        }
        JsonNode n;
        try {
            n = JSON.readTree(bytes);
        } catch (IOException e) {
            throw bad("it is not JSON");
        }
        if (n == null || !n.isObject() || !n.path("algorithm").isTextual() || !n.path("keyId").isTextual()
                || !n.path("signature").isTextual()) {
            throw bad("it lacks algorithm, keyId or signature");
        }
        try {
            return new ManifestSignature(n.get("algorithm").asText(), n.get("keyId").asText(),
                    Base64.getDecoder().decode(n.get("signature").asText()));
        } catch (IllegalArgumentException e) {
            throw bad("its signature is not base64");
        }
    }

    private static ImageException bad(String why) {
        return new ImageException(ImageException.Reason.BadSignature, ImageFiles.SIGNATURE + " is malformed: " + why);
    }
}
