package io.vllmsnap.image;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.function.LongConsumer;

/**
 * SHA-256 of bytes and files. Files are read through a channel into a 1 MiB heap buffer: on this project's CPU
 * machine that hashes at about 1.2 GB/s per core (bench/cpu/image-verify.sh), the JDK's SHA-256 intrinsic being the
 * limit, not the copy.
 */
public final class Digests {

    static final int BUFFER_BYTES = 1 << 20;

    private Digests() {
    }

    public static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JDK has no SHA-256", e);
        }
    }

    public static String sha256Hex(byte[] bytes) {
        return HexFormat.of().formatHex(sha256().digest(bytes));
    }

    /** What hashing a file found: how many bytes it read and their SHA-256. */
    public record FileDigest(long size, String sha256) {
    }

    /**
     * Hashes a regular file without following a symbolic link, reading at most {@code limit} bytes plus one (so a
     * longer file is seen to be longer without being read to its end); {@code progress} gets byte counts as read.
     */
    public static FileDigest sha256(Path file, long limit, LongConsumer progress) throws IOException {
        MessageDigest md = sha256();
        long total = 0;
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS)) {
            ByteBuffer buf = ByteBuffer.allocate(BUFFER_BYTES);
            while (total <= limit) {
                buf.clear();
                long room = limit + 1 - total;
                if (room < buf.capacity()) {
                    buf.limit((int) room);
                }
                int n = ch.read(buf);
                if (n < 0) {
                    break;
                }
                md.update(buf.array(), 0, n);
                total += n;
                progress.accept(n);
            }
        }
        return new FileDigest(total, HexFormat.of().formatHex(md.digest()));
    }

    /**
     * An output stream that hashes what passes through it and refuses more than {@code limit} bytes, so a source
     * that sends more than the manifest records cannot fill the disk.
     */
    public static final class HashingOutputStream extends OutputStream {
        private final OutputStream out;
        private final MessageDigest md = sha256();
        private final long limit;
        private final LongConsumer progress;
        private long count;

        public HashingOutputStream(OutputStream out, long limit, LongConsumer progress) {
            this.out = out;
            this.limit = limit;
            this.progress = progress;
        }

        @Override
        public void write(int b) throws IOException {
            write(new byte[] {(byte) b}, 0, 1);
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            if (count + len > limit) {
                throw new TooLongException(limit);
            }
            out.write(b, off, len);
            md.update(b, off, len);
            count += len;
            progress.accept(len);
        }

        @Override
        public void flush() throws IOException {
            out.flush();
        }

        @Override
        public void close() throws IOException {
            out.close();
        }

        public long count() {
            return count;
        }

        /** The digest of everything written; call once, at the end. */
        public String sha256Hex() {
            return HexFormat.of().formatHex(md.digest());
        }
    }

    /** Thrown by {@link HashingOutputStream} and {@link CountingOutputStream} when more bytes come than recorded. */
    public static final class TooLongException extends IOException {
        public TooLongException(long limit) {
            super("more than the recorded " + limit + " bytes");
        }
    }

    /** Counts bytes and refuses more than {@code limit}, without hashing (for sources that verify digests). */
    public static final class CountingOutputStream extends OutputStream {
        private final OutputStream out;
        private final long limit;
        private final LongConsumer progress;
        private long count;

        public CountingOutputStream(OutputStream out, long limit, LongConsumer progress) {
            this.out = out;
            this.limit = limit;
            this.progress = progress;
        }

        @Override
        public void write(int b) throws IOException {
            write(new byte[] {(byte) b}, 0, 1);
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            if (count + len > limit) {
                throw new TooLongException(limit);
            }
            out.write(b, off, len);
            count += len;
            progress.accept(len);
        }

        @Override
        public void flush() throws IOException {
            out.flush();
        }

        @Override
        public void close() throws IOException {
            out.close();
        }

        public long count() {
            return count;
        }
    }
}
