package io.vllmsnap.image;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/**
 * Remembers that a node-local image copy was verified: which manifest (its SHA-256), which key signed it, and the
 * {@link FileIdentity} of every file, the manifest and its signature included, as they were when they were hashed.
 * A later verification that finds every identity unchanged skips hashing; any difference (a write, a replaced file,
 * another key) makes it hash everything again. Stamps are kept outside the image directory, root-only, by whoever
 * owns the copy (the node cache); a stamp is only a shortcut, never a source of trust by itself.
 */
@JsonIgnoreProperties(ignoreUnknown = true)
public record VerificationStamp(int version, String manifestSha256, String keyId, Map<String, FileIdentity> files) {

    static final int VERSION = 1;
    private static final ObjectMapper JSON = new ObjectMapper();

    /** The identities of an image's files now. */
    static Map<String, FileIdentity> identities(Path dir, ImageFiles list) throws IOException {
        Map<String, FileIdentity> ids = new LinkedHashMap<>();
        ids.put(ImageFiles.MANIFEST, FileIdentity.of(dir.resolve(ImageFiles.MANIFEST)));
        ids.put(ImageFiles.SIGNATURE, FileIdentity.of(dir.resolve(ImageFiles.SIGNATURE)));
        for (String p : list.entries().keySet()) {
            ids.put(p, FileIdentity.of(dir.resolve(p)));
        }
        return ids;
    }

    /** Whether this stamp vouches for the image as it is now, checked by that manifest and key. */
    boolean matches(Path dir, ImageFiles list, String verifiedKeyId) {
        if (version != VERSION || !list.manifestSha256().equals(manifestSha256) || !verifiedKeyId.equals(keyId)
                || files == null || files.size() != list.entries().size() + 2) {
            return false;
        }
        try {
            return identities(dir, list).equals(files);
        } catch (IOException e) {
            return false;
        }
    }

    static Optional<VerificationStamp> read(Path stampFile) {
        try {
            if (!Files.isRegularFile(stampFile, LinkOption.NOFOLLOW_LINKS)) {
                return Optional.empty();
            }
            return Optional.of(JSON.readValue(Files.readAllBytes(stampFile), VerificationStamp.class));
        } catch (NoSuchFileException e) {
            return Optional.empty();
        } catch (IOException e) {
            return Optional.empty(); // unreadable: verify again and write a new one
        }
    }

    void write(Path stampFile) throws IOException {
        PrivateFiles.createDirectories(stampFile.getParent());
        PrivateFiles.writeAtomically(stampFile, JSON.writeValueAsBytes(this));
    }
}
