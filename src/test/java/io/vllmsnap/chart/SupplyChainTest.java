package io.vllmsnap.chart;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The CRIU the agent image runs as root is built from a source the build verifies (issue 16: main fetched Debian
 * sid's source with [trusted=yes] and no pinned digest): the upstream tarball is pinned by SHA-256 and checked
 * before it is unpacked, and apt checks sid's signature.
 */
class SupplyChainTest {

    static final Path SCRIPT = ChartFiles.ROOT.resolve("hack/install-criu.sh");

    record Result(int exitCode, String output) {
    }

    static Result verify(Path file) throws Exception {
        Process p = new ProcessBuilder("bash", SCRIPT.toString(), "--verify", file.toString()).redirectErrorStream(true).start();
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IllegalStateException("install-criu.sh --verify timed out");
        }
        return new Result(p.exitValue(), new String(p.getInputStream().readAllBytes()));
    }

    static String pinned(String name) {
        Matcher m;
        try {
            m = Pattern.compile("(?m)^" + name + "=(\\S+)$").matcher(Files.readString(SCRIPT));
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        assertThat(m.find()).as(name + " pinned in " + SCRIPT).isTrue();
        return m.group(1);
    }

    /** The tarball install-criu.sh fetched for this machine (make test runs it first). */
    static Path cachedTarball() throws Exception {
        String cache = System.getenv().getOrDefault("VLLMSNAP_CACHE", System.getProperty("user.home") + "/.cache/vllmsnap");
        Path tarball = Path.of(cache, "criu", "src", "criu_" + pinned("CRIU_VERSION") + ".orig.tar.xz");
        assertThat(tarball).as("run hack/install-criu.sh first (make test does)").isRegularFile();
        return tarball;
    }

    @Test
    void theSourceTarballIsPinnedAndAChangedOneRefused(@TempDir Path tmp) throws Exception {
        assertThat(pinned("CRIU_ORIG_SHA256")).matches("[0-9a-f]{64}");
        Path real = cachedTarball();
        assertThat(verify(real).exitCode()).as(verify(real).output()).isZero();

        byte[] bytes = Files.readAllBytes(real);
        bytes[bytes.length / 2] ^= 0x01;
        Path tampered = Files.write(tmp.resolve("criu_" + pinned("CRIU_VERSION") + ".orig.tar.xz"), bytes);
        Result refused = verify(tampered);
        assertThat(refused.exitCode()).isNotZero();
        assertThat(refused.output()).contains("does not have the pinned sha256");
        Path truncated = Files.write(tmp.resolve("truncated.tar.xz"), java.util.Arrays.copyOf(Files.readAllBytes(real), 4096));
        assertThat(verify(truncated).exitCode()).isNotZero();
    }

    /** The digest pinned is the one Debian's signed source description lists for that tarball. */
    @Test
    void thePinIsTheDigestDebiansSignedDscLists() throws Exception {
        Path dsc;
        try (var files = Files.list(cachedTarball().getParent())) {
            dsc = files.filter(f -> f.getFileName().toString().matches("criu_" + Pattern.quote(pinned("CRIU_VERSION")) + "-[0-9.]+\\.dsc"))
                    .findFirst().orElseThrow(() -> new AssertionError("no .dsc next to the tarball"));
        }
        String text = Files.readString(dsc);
        assertThat(text).startsWith("-----BEGIN PGP SIGNED MESSAGE-----");
        assertThat(text).contains(" " + pinned("CRIU_ORIG_SHA256") + " ");
    }

    @Test
    void aptIsNeverToldToTrustAnUnsignedSourceAndNothingIsUnpackedUnchecked() throws Exception {
        List<String> code = Files.readAllLines(SCRIPT).stream().map(String::strip).filter(l -> !l.startsWith("#")).toList();
        assertThat(code).noneMatch(l -> l.contains("trusted=yes"));
        assertThat(code).anyMatch(l -> l.contains("deb-src [signed-by="));
        int unpack = code.indexOf(code.stream().filter(l -> l.startsWith("tar -x")).findFirst().orElseThrow());
        assertThat(code.subList(Math.max(0, unpack - 3), unpack)).anyMatch(l -> l.startsWith("matches_pin \"$tarball\""));
    }
}
