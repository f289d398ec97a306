package io.vllmsnap.image;

import io.vllmsnap.image.ImageException.Reason;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileTime;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class ImageVerifierTest {

    @TempDir
    Path tmp;

    private final TestImages.Keys keys = TestImages.Keys.generate();
    private final ImageVerifier verifier = new ImageVerifier(keys.trusted(), 2);

    private Path image() throws Exception {
        return TestImages.typical(tmp.resolve("img"), keys.signer(), 3 << 20);
    }

    private void assertRefused(Path dir, Reason reason, String messagePart) {
        assertThatThrownBy(() -> verifier.verify(dir))
                .isInstanceOfSatisfying(ImageException.class, e -> {
                    assertThat(e.reason()).isEqualTo(reason);
                    assertThat(e.getMessage()).contains(messagePart);
                });
    }

    @Test
    void completeSignedImageVerifiesAndEveryByteIsHashed() throws Exception {
        Path dir = image();
        VerifiedImage v = verifier.verify(dir);
        assertThat(v.keyId()).isEqualTo(keys.signer().keyId());
        assertThat(v.fromStamp()).isFalse();
        assertThat(v.hashedBytes()).isEqualTo(v.files().totalBytes()).isEqualTo((3 << 20) + 4096 + 1234 + 777 + 42 + 300);
        assertThat(v.files().entries()).containsKeys("criu/pages-1.img", "container.json");
    }

    @Test
    void unsignedImageIsRefused() throws Exception {
        Path dir = image();
        Files.delete(dir.resolve(ImageFiles.SIGNATURE));
        assertRefused(dir, Reason.Unsigned, "unsigned images are never restored");
    }

    @Test
    void signatureByAnUntrustedKeyIsRefused() throws Exception {
        Path dir = image();
        TestImages.Keys other = TestImages.Keys.generate();
        other.signer().signImage(dir);
        assertRefused(dir, Reason.BadSignature, "which this node does not trust");
    }

    @Test
    void manifestChangedAfterSigningIsRefused() throws Exception {
        Path dir = image();
        // an attacker makes the manifest match a changed pages file: the signature no longer covers it
        TestImages.flipByte(dir.resolve("criu/pages-1.img"), 100);
        TestImages.writeManifest(dir, List.of("criu/pages-1.img", "criu/pagemap-1.img", "criu/core-1.img",
                "criu/mm-1.img", "criu/inventory.img", "container.json"));
        assertRefused(dir, Reason.BadSignature, "does not verify");
    }

    @Test
    void garbledSignatureFileIsRefused() throws Exception {
        Path dir = image();
        Files.writeString(dir.resolve(ImageFiles.SIGNATURE), "not json");
        assertRefused(dir, Reason.BadSignature, "malformed");
    }

    @Test
    void oneChangedByteIsTampered() throws Exception {
        Path dir = image();
        TestImages.flipByte(dir.resolve("criu/pages-1.img"), 3_000_000);
        assertRefused(dir, Reason.Tampered, "criu/pages-1.img does not have the SHA-256");
    }

    @Test
    void shorterFileIsTruncatedAndLongerIsTampered() throws Exception {
        Path dir = image();
        try (FileChannel ch = FileChannel.open(dir.resolve("criu/pages-1.img"), StandardOpenOption.WRITE)) {
            ch.truncate(4096);
        }
        assertRefused(dir, Reason.Truncated, "criu/pages-1.img has 4096 bytes");
        Path other = TestImages.typical(tmp.resolve("img2"), keys.signer(), 1 << 20);
        Files.write(other.resolve("criu/core-1.img"), new byte[] {1}, StandardOpenOption.APPEND);
        assertRefused(other, Reason.Tampered, "criu/core-1.img has 1235 bytes, more than");
    }

    @Test
    void missingFileAndMissingManifestAreMissingFile() throws Exception {
        Path dir = image();
        Files.delete(dir.resolve("criu/mm-1.img"));
        assertRefused(dir, Reason.MissingFile, "lacks criu/mm-1.img");
        Files.delete(dir.resolve(ImageFiles.MANIFEST));
        assertRefused(dir, Reason.MissingFile, "has no manifest.json");
        assertRefused(tmp.resolve("nothing-here"), Reason.MissingFile, "is not there");
    }

    @Test
    void extraFileDirectoryOrSymlinkIsUnexpected() throws Exception {
        Path dir = image();
        // an unlisted CRIU image file would be read by CRIU: refused
        Files.write(dir.resolve("criu/pagemap-2.img"), new byte[10]);
        assertRefused(dir, Reason.UnexpectedFile, "criu/pagemap-2.img (not listed in the manifest)");
        Files.delete(dir.resolve("criu/pagemap-2.img"));
        Files.createDirectory(dir.resolve("criu/extra"));
        assertRefused(dir, Reason.UnexpectedFile, "criu/extra/ (a directory the manifest does not list)");
        Files.delete(dir.resolve("criu/extra"));
        verifier.verify(dir);
        // a listed file replaced by a link to a file with the very same bytes is still refused
        Path copy = tmp.resolve("elsewhere.img");
        Files.copy(dir.resolve("criu/core-1.img"), copy);
        Files.delete(dir.resolve("criu/core-1.img"));
        Files.createSymbolicLink(dir.resolve("criu/core-1.img"), copy);
        assertRefused(dir, Reason.UnexpectedFile, "criu/core-1.img (a symbolic link)");
    }

    @Test
    void imageDirectoryThatIsALinkIsRefused() throws Exception {
        Path dir = image();
        Path link = tmp.resolve("link");
        Files.createSymbolicLink(link, dir);
        assertRefused(link, Reason.MissingFile, "not a directory");
    }

    @Test
    void signedManifestWithPathsLeavingTheImageIsInvalid() throws Exception {
        Path dir = tmp.resolve("evil");
        Files.createDirectories(dir.resolve("criu"));
        String sha = "0".repeat(64);
        for (String bad : List.of("../outside", "/etc/passwd", "criu/../../x", "criu//x", "./x", "criu/", "a\\\\b",
                ImageFiles.SIGNATURE)) {
            TestImages.writeRawFiles(dir, "{\"" + bad + "\": {\"size\": 1, \"sha256\": \"" + sha + "\"}}");
            keys.signer().signImage(dir);
            assertRefused(dir, Reason.InvalidManifest, "not a valid image manifest");
        }
        TestImages.writeRawFiles(dir, "{\"x\": {\"size\": 1, \"sha256\": \"abc\"}}");
        keys.signer().signImage(dir);
        assertRefused(dir, Reason.InvalidManifest, "no valid \"sha256\"");
        TestImages.writeRawFiles(dir, "{\"x\": {\"size\": -1, \"sha256\": \"" + sha + "\"}}");
        keys.signer().signImage(dir);
        assertRefused(dir, Reason.InvalidManifest, "no valid \"size\"");
        Files.writeString(dir.resolve(ImageFiles.MANIFEST), "{\"files\": {\"x\": {\"size\": 1, \"sha256\": \"" + sha
                + "\"}, \"x\": {\"size\": 2, \"sha256\": \"" + sha + "\"}}}");
        keys.signer().signImage(dir);
        assertRefused(dir, Reason.InvalidManifest, "Duplicate field");
    }

    @Test
    void stampSkipsHashingUntilAnythingChanges() throws Exception {
        Path dir = image();
        Path stamp = tmp.resolve("stamps/img.json");
        VerifiedImage first = verifier.verify(dir, stamp);
        assertThat(first.fromStamp()).isFalse();
        assertThat(Files.getPosixFilePermissions(stamp)).isEqualTo(PrivateFiles.FILE_MODE);

        VerifiedImage second = verifier.verify(dir, stamp);
        assertThat(second.fromStamp()).isTrue();
        assertThat(second.hashedBytes()).isZero();

        // same size, one byte changed in place: ctime and mtime move, so it is hashed again and refused
        FileTime mtimeAsStamped = Files.getLastModifiedTime(dir.resolve("criu/pages-1.img"));
        TestImages.flipByte(dir.resolve("criu/pages-1.img"), 10);
        assertThatThrownBy(() -> verifier.verify(dir, stamp))
                .isInstanceOfSatisfying(ImageException.class, e -> assertThat(e.reason()).isEqualTo(Reason.Tampered));
        TestImages.flipByte(dir.resolve("criu/pages-1.img"), 10); // flipped back: content as signed again
        // mtime set back to what the stamp recorded: ctime still differs, so it is hashed again (and passes)
        Files.setLastModifiedTime(dir.resolve("criu/pages-1.img"), mtimeAsStamped);
        assertThat(Files.getLastModifiedTime(dir.resolve("criu/pages-1.img"))).isEqualTo(mtimeAsStamped);
        VerifiedImage third = verifier.verify(dir, stamp);
        assertThat(third.fromStamp()).isFalse();
        assertThat(third.hashedBytes()).isEqualTo(third.files().totalBytes());
        assertThat(verifier.verify(dir, stamp).fromStamp()).isTrue();

        // a file replaced by another inode with the same bytes: hashed again
        Path f = dir.resolve("criu/core-1.img");
        byte[] bytes = Files.readAllBytes(f);
        Files.delete(f);
        Files.write(f, bytes);
        assertThat(verifier.verify(dir, stamp).fromStamp()).isFalse();

        // a stamp made under another trusted key does not vouch for the image once that key is the one in use
        TestImages.Keys rotated = TestImages.Keys.generate();
        rotated.signer().signImage(dir);
        ImageVerifier both = new ImageVerifier(new TrustedKeys(List.of(keys.signer().publicKey(),
                rotated.signer().publicKey())), 2);
        VerifiedImage resigned = both.verify(dir, stamp);
        assertThat(resigned.fromStamp()).isFalse();
        assertThat(resigned.keyId()).isEqualTo(rotated.signer().keyId());
    }

    @Test
    void stampIsNotTakenForAnExtraFile() throws Exception {
        Path dir = image();
        Path stamp = tmp.resolve("stamp.json");
        verifier.verify(dir, stamp);
        Files.write(dir.resolve("criu/pages-2.img"), new byte[4096]);
        assertThatThrownBy(() -> verifier.verify(dir, stamp))
                .isInstanceOfSatisfying(ImageException.class,
                        e -> assertThat(e.reason()).isEqualTo(Reason.UnexpectedFile));
    }

    @Test
    void manyFilesAreHashedInParallelAndTheBadOneIsNamed() throws Exception {
        Map<String, Long> files = new LinkedHashMap<>();
        for (int i = 0; i < 24; i++) {
            files.put("criu/pages-" + i + ".img", (long) (i * 37_000 + 1));
        }
        Path dir = TestImages.create(tmp.resolve("many"), files, keys.signer(), 7);
        assertThat(new ImageVerifier(keys.trusted(), 4).verify(dir).hashedBytes())
                .isEqualTo(files.values().stream().mapToLong(Long::longValue).sum());
        TestImages.flipByte(dir.resolve("criu/pages-17.img"), 5);
        assertThatThrownBy(() -> new ImageVerifier(keys.trusted(), 4).verify(dir))
                .isInstanceOfSatisfying(ImageException.class, e -> {
                    assertThat(e.reason()).isEqualTo(Reason.Tampered);
                    assertThat(e.getMessage()).contains("criu/pages-17.img");
                });
    }

    @Test
    void emptyFileAndEmptyImageAreFine() throws Exception {
        Path dir = TestImages.create(tmp.resolve("empty"), Map.of("criu/empty.img", 0L), keys.signer(), 1);
        assertThat(verifier.verify(dir).hashedBytes()).isZero();
    }
}
