package io.vllmsnap.engine;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;

/** Reads an image's files with parallel readers so CRIU later finds them in the page cache. */
public final class Stager {
    private static final int CHUNK = 8 << 20;

    private Stager() {
    }

    /** @return bytes read */
    public static long prefetch(Path dir, int readers) throws IOException {
        List<Path> files;
        try (Stream<Path> s = Files.walk(dir)) {
            files = s.filter(Files::isRegularFile).toList();
        }
        // Large files are split into chunks so one big pages-*.img file is read by every reader.
        List<long[]> work = new ArrayList<>();
        List<Path> workFile = new ArrayList<>();
        for (Path f : files) {
            long size = Files.size(f);
            for (long off = 0; off < Math.max(size, 1); off += CHUNK) {
                work.add(new long[] {off, Math.min(CHUNK, size - off)});
                workFile.add(f);
            }
        }
        AtomicLong total = new AtomicLong();
        try (ExecutorService pool = Executors.newFixedThreadPool(Math.max(1, readers))) {
            List<Future<?>> futures = new ArrayList<>();
            for (int i = 0; i < work.size(); i++) {
                Path f = workFile.get(i);
                long[] range = work.get(i);
                futures.add(pool.submit(() -> total.addAndGet(read(f, range[0], range[1]))));
            }
            for (Future<?> fu : futures) {
                fu.get();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("staging interrupted", e);
        } catch (java.util.concurrent.ExecutionException e) {
            throw new IOException("staging failed: " + e.getCause().getMessage(), e.getCause());
        }
        return total.get();
    }

    private static long read(Path f, long offset, long length) {
        ByteBuffer buf = ByteBuffer.allocateDirect((int) Math.min(CHUNK, Math.max(length, 1)));
        long done = 0;
        try (FileChannel ch = FileChannel.open(f, StandardOpenOption.READ)) {
            while (done < length) {
                buf.clear();
                int n = ch.read(buf, offset + done);
                if (n < 0) {
                    break;
                }
                done += n;
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return done;
    }
}
