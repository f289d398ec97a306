package io.vllmsnap.engine;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Map;

/**
 * What an image holds and how it was made. Written last, so an image directory with a readable manifest whose
 * files all have their recorded sizes is complete.
 *
 * @param externalMounts mount key → mount point in the source, declared external at dump, bound again at restore
 * @param files          image file name (relative to {@code criu/}) → size in bytes
 * @param externalNetwork CRIU key of the source's own network namespace, declared external at dump: a restore must
 *                        be given a network namespace to join; null when the source shared the host's
 */
@JsonIgnoreProperties(ignoreUnknown = true)
public record Manifest(
        int formatVersion,
        String createdAt,
        Source source,
        String criuVersion,
        List<GpuCheckpointer.GpuInfo> gpus,
        int cudaProcesses,
        long sizeBytes,
        Map<String, Long> files,
        Map<String, String> externalMounts,
        Map<String, Double> phaseSeconds,
        double totalSeconds,
        String externalNetwork) {

    public static final int FORMAT_VERSION = 1;
    public static final String FILE_NAME = "manifest.json";
    public static final String CRIU_DIR = "criu";

    /** The process tree that was dumped. */
    public record Source(long pid, String command, String hostname, int port, int sleepLevel, boolean leaveRunning,
                         boolean tcpEstablished, boolean fileLocks, boolean externalUnixSockets) {
    }

    static final ObjectMapper JSON = new ObjectMapper()
            .enable(SerializationFeature.INDENT_OUTPUT);

    /** Writes the manifest into {@code dir} and fsyncs it. */
    void writeTo(Path dir) throws IOException {
        Path file = dir.resolve(FILE_NAME);
        Files.write(file, JSON.writeValueAsBytes(this));
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
            ch.force(true);
        }
    }

    /** Reads and checks an image's manifest; a missing, unreadable or foreign manifest is a clear error. */
    public static Manifest read(Path dir) throws EngineException {
        Path file = dir.resolve(FILE_NAME);
        if (!Files.isDirectory(dir)) {
            throw new EngineException(dir + " is not an image directory");
        }
        if (!Files.isRegularFile(file)) {
            throw new EngineException(dir + " is not a complete image: " + FILE_NAME + " is missing");
        }
        Manifest m;
        try {
            m = JSON.readValue(file.toFile(), Manifest.class);
        } catch (IOException e) {
            throw new EngineException(file + " is corrupt: " + e.getMessage(), e);
        }
        if (m.formatVersion() != FORMAT_VERSION) {
            throw new EngineException(file + " has format version " + m.formatVersion() + "; this vllmsnap reads "
                    + FORMAT_VERSION);
        }
        return m;
    }

    /** Checks that every image file is there with its recorded size (catches truncation and missing files). */
    public void verifyFiles(Path dir) throws EngineException {
        Path criu = dir.resolve(CRIU_DIR);
        for (Map.Entry<String, Long> f : files.entrySet()) {
            Path p = criu.resolve(f.getKey());
            try {
                long size = Files.size(p);
                if (size != f.getValue()) {
                    throw new EngineException("image " + dir + " is damaged: " + CRIU_DIR + "/" + f.getKey() + " has "
                            + size + " bytes, the manifest records " + f.getValue());
                }
            } catch (IOException e) {
                throw new EngineException("image " + dir + " is damaged: " + CRIU_DIR + "/" + f.getKey()
                        + " is missing or unreadable");
            }
        }
    }
}
