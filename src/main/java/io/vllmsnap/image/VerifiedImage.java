package io.vllmsnap.image;

import java.nio.file.Path;

/**
 * An image directory that passed verification: signed by a trusted key, exactly the listed files, each of its
 * recorded size and SHA-256.
 *
 * @param hashedBytes bytes read and hashed by this verification (0 when a stamp vouched for the copy)
 * @param fromStamp   whether an unchanged verification stamp made hashing unnecessary
 * @param nanos       how long the verification took
 */
public record VerifiedImage(Path dir, ImageFiles files, String keyId, boolean fromStamp, long hashedBytes,
                            long nanos) {

    /** The same verification, for the directory the image was moved to (a rename keeps every file's identity). */
    public VerifiedImage withDir(Path newDir) {
        return new VerifiedImage(newDir, files, keyId, fromStamp, hashedBytes, nanos);
    }
}
