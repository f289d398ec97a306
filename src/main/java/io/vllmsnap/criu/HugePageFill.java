package io.vllmsnap.criu;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Optional;

/**
 * Whether CRIU should fill restored memory through transparent huge pages (our CRIU patch
 * hack/criu-patches/0002-restore-thp-fill.patch, switched on by {@value #CRIU_ENV}=1).
 *
 * <p>Filling fresh memory is bound by page faults, and whether 2 MiB pages are faster depends on the host: on the
 * H100 machines here first touch ran at 5.0 GB/s with huge pages against 1.5 GB/s without, on the CI VMs huge pages
 * were slower (0.5 against 2.8 GB/s: the kernel compacts memory to find them). So the default, {@code auto}, measures
 * both once per process on this host and uses huge pages only where they win clearly. {@value #SETTING_ENV} = on |
 * off | auto overrides it.
 */
public final class HugePageFill {
    public static final String SETTING_ENV = "VLLMSNAP_THP_FILL";
    static final String CRIU_ENV = "VLLMSNAP_CRIU_THP_FILL";
    static final Path THP_ENABLED = Path.of("/sys/kernel/mm/transparent_hugepage/enabled");
    /** Huge pages must be at least this much faster to be worth the extra memory they can cost sparse areas. */
    static final double MIN_GAIN = 1.25;
    private static final long PROBE_BYTES = 64L << 20;
    private static final int MADV_HUGEPAGE = 14;

    /** First-touch speeds of this host, GB/s, and the kernel's THP mode (always, madvise or never). */
    public record Measurement(double basePagesGBs, double hugePagesGBs, String thpMode) {
        public boolean hugePagesWin() {
            return !"never".equals(thpMode) && hugePagesGBs >= MIN_GAIN * basePagesGBs;
        }

        @Override
        public String toString() {
            return String.format(Locale.ROOT, "first touch %.2f GB/s with 4 KiB pages, %.2f GB/s with huge pages (THP %s)",
                    basePagesGBs, hugePagesGBs, thpMode);
        }
    }

    /** The decision and why, for logs and the CLI. */
    public record Decision(boolean enabled, String reason) {
    }

    private static volatile Decision cached;

    private HugePageFill() {
    }

    /** Decides from {@value #SETTING_ENV} (default auto); auto measures once per process. */
    public static Decision fromEnvironment() {
        Decision d = cached;
        if (d == null) {
            d = decide(Optional.ofNullable(System.getenv(SETTING_ENV)).orElse("auto"), HugePageFill::measure);
            cached = d;
        }
        return d;
    }

    interface Probe {
        Measurement measure() throws IOException;
    }

    static Decision decide(String setting, Probe probe) {
        return switch (setting.strip().toLowerCase(Locale.ROOT)) {
            case "on", "true", "1" -> new Decision(true, SETTING_ENV + "=" + setting);
            case "off", "false", "0" -> new Decision(false, SETTING_ENV + "=" + setting);
            case "auto", "" -> {
                try {
                    Measurement m = probe.measure();
                    yield new Decision(m.hugePagesWin(), "auto: " + m);
                } catch (IOException | RuntimeException e) {
                    yield new Decision(false, "auto: cannot measure (" + e.getMessage() + ")");
                }
            }
            default -> throw new IllegalArgumentException(SETTING_ENV + " must be on, off or auto, not '" + setting
                    + "'");
        };
    }

    /** The mode the kernel shows in brackets, e.g. {@code always [madvise] never} gives madvise. */
    static String thpMode(String enabledFile) {
        int a = enabledFile.indexOf('[');
        int b = enabledFile.indexOf(']', a + 1);
        return a >= 0 && b > a ? enabledFile.substring(a + 1, b) : "never";
    }

    /** Touches fresh anonymous memory page by page, plain and with MADV_HUGEPAGE; the better of two tries each. */
    static Measurement measure() throws IOException {
        String mode = Files.exists(THP_ENABLED) ? thpMode(Files.readString(THP_ENABLED)) : "never";
        double base = 0;
        double huge = 0;
        for (int i = 0; i < 2; i++) {
            base = Math.max(base, touchSpeed(false));
            huge = Math.max(huge, touchSpeed(true));
        }
        return new Measurement(base, huge, mode);
    }

    private static double touchSpeed(boolean hugePages) {
        Linker linker = Linker.nativeLinker();
        var libc = linker.defaultLookup();
        MethodHandle mmap = linker.downcallHandle(libc.find("mmap").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG,
                        ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG));
        MethodHandle madvise = linker.downcallHandle(libc.find("madvise").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG,
                        ValueLayout.JAVA_INT));
        MethodHandle munmap = linker.downcallHandle(libc.find("munmap").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));
        try {
            // PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS; 2 MiB extra so an aligned 2 MiB range exists inside
            MemorySegment raw = (MemorySegment) mmap.invokeExact(MemorySegment.NULL, PROBE_BYTES + (2L << 20), 3, 0x22,
                    -1, 0L);
            if (raw.address() == -1L) {
                throw new IllegalStateException("mmap failed");
            }
            try {
                long aligned = (raw.address() + (2L << 20) - 1) & ~((2L << 20) - 1);
                MemorySegment mem = MemorySegment.ofAddress(aligned).reinterpret(PROBE_BYTES, Arena.global(), null);
                if (hugePages) {
                    int ignored = (int) madvise.invokeExact(mem, PROBE_BYTES, MADV_HUGEPAGE);
                }
                long t0 = System.nanoTime();
                for (long off = 0; off < PROBE_BYTES; off += 4096) {
                    mem.set(ValueLayout.JAVA_BYTE, off, (byte) 1);
                }
                return PROBE_BYTES / ((System.nanoTime() - t0) / 1e9) / 1e9;
            } finally {
                int ignored = (int) munmap.invokeExact(raw, PROBE_BYTES + (2L << 20));
            }
        } catch (Throwable t) {
            throw new IllegalStateException("first-touch probe failed: " + t, t);
        }
    }
}
