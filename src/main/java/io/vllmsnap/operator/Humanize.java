package io.vllmsnap.operator;

import java.util.Locale;

/** Short human-readable values for printer columns. */
public final class Humanize {
    private Humanize() {
    }

    public static String millis(long millis) {
        if (millis < 1000) {
            return millis + "ms";
        }
        if (millis < 120_000) {
            return String.format(Locale.ROOT, "%.2fs", millis / 1000.0);
        }
        return String.format(Locale.ROOT, "%dm%02ds", millis / 60_000, (millis / 1000) % 60);
    }

    public static String bytes(long bytes) {
        String[] units = {"B", "Ki", "Mi", "Gi", "Ti"};
        double value = bytes;
        int unit = 0;
        while (value >= 1024 && unit < units.length - 1) {
            value /= 1024;
            unit++;
        }
        return unit == 0 ? bytes + "B" : String.format(Locale.ROOT, "%.1f%s", value, units[unit]);
    }
}
