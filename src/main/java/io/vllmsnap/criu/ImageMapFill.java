package io.vllmsnap.criu;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Whether CRIU maps restored memory from the image instead of copying it (our CRIU patch
 * hack/criu-patches/0003-restore-map-fill.patch, switched on by {@value #CRIU_ENV}=1).
 *
 * <p>With it, long runs of a private anonymous area's pages become private mappings of the image's pages file: the
 * restore copies nothing, the process reads the page cache and copies a page only when it writes it, and replicas
 * restored from one image on a node share every page they only read. Two consequences the engine handles: an image
 * must never change while a process maps it (snapshots never overwrite one, and deleting it is safe), and a process
 * restored this way cannot itself be snapshotted (its memory refers to another snapshot's file; see
 * {@link #mappedImageFile}). {@value #SETTING_ENV} = on (default) | off.
 */
public final class ImageMapFill {
    public static final String SETTING_ENV = "VLLMSNAP_MAP_FILL";
    static final String CRIU_ENV = "VLLMSNAP_CRIU_MAP_FILL";
    /** The file name CRIU gives page data: a mapping of one in a process's maps is memory restored by map fill. */
    private static final Pattern PAGES_MAPPING = Pattern.compile("\\s(/\\S*/pages-\\d+\\.img)( \\(deleted\\))?$");

    private ImageMapFill() {
    }

    /** From {@value #SETTING_ENV}; unset means on. */
    public static boolean fromEnvironment() {
        return decide(Optional.ofNullable(System.getenv(SETTING_ENV)).orElse("on"));
    }

    static boolean decide(String setting) {
        return switch (setting.strip().toLowerCase(Locale.ROOT)) {
            case "on", "true", "1", "" -> true;
            case "off", "false", "0" -> false;
            default -> throw new IllegalArgumentException(SETTING_ENV + " must be on or off, not '" + setting + "'");
        };
    }

    /** The first snapshot image file that a process's memory maps (from its /proc/PID/maps lines), if any. */
    public static Optional<String> mappedImageFile(List<String> mapsLines) {
        for (String line : mapsLines) {
            Matcher m = PAGES_MAPPING.matcher(line);
            if (m.find()) {
                return Optional.of(m.group(1));
            }
        }
        return Optional.empty();
    }

    /** {@link #mappedImageFile(List)} of a live process; empty when it is gone. */
    public static Optional<String> mappedImageFile(long pid) throws IOException {
        Path maps = Path.of("/proc/" + pid + "/maps");
        try {
            return mappedImageFile(Files.readAllLines(maps));
        } catch (java.nio.file.NoSuchFileException e) {
            return Optional.empty();
        }
    }
}
