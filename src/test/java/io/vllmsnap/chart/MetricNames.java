package io.vllmsnap.chart;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Metric names: the ones the application exports, and the ones a PromQL expression reads. */
public final class MetricNames {

    /** Series Prometheus itself makes for every scrape target; the alerts may use them. */
    static final Set<String> PROMETHEUS_SERIES = Set.of("up");

    private static final Set<String> PROMQL_WORDS = Set.of("by", "without", "on", "ignoring", "group_left",
            "group_right", "bool", "and", "or", "unless", "offset", "inf", "nan");
    private static final Pattern IDENTIFIER = Pattern.compile("[a-zA-Z_:][a-zA-Z0-9_:]*");

    private MetricNames() {
    }

    /** Prefix of the series the agent exports; the others are the operator's. */
    public static final String AGENT_PREFIX = "vllmsnap_agent_";

    /**
     * The names listed in src/test/resources/io/vllmsnap/chart/exported-metric-names.txt: what the dashboard and
     * alerts may read. The operator's and the agent's metrics tests check each of their names against a real scrape.
     */
    public static Set<String> expectedExports() {
        try (InputStream in = MetricNames.class.getResourceAsStream("exported-metric-names.txt")) {
            Set<String> names = new TreeSet<>();
            new String(in.readAllBytes(), StandardCharsets.UTF_8).lines().map(String::strip)
                    .filter(l -> !l.isEmpty() && !l.startsWith("#")).forEach(names::add);
            return names;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Series names in a Prometheus text exposition (an answer of /q/metrics). */
    public static Set<String> fromScrape(String exposition) {
        Set<String> names = new TreeSet<>();
        exposition.lines().map(String::strip).filter(l -> !l.isEmpty() && !l.startsWith("#"))
                .forEach(l -> names.add(l.split("[{\\s]", 2)[0]));
        return names;
    }

    /** Metric names a PromQL expression reads (functions, label names, keywords and Grafana variables left out). */
    static Set<String> referencedBy(String promql) {
        String e = promql
                .replaceAll("\"(\\\\.|[^\"\\\\])*\"", "\"\"")         // string literals (label values)
                .replaceAll("\\{[^}]*}", " ")                          // label matchers
                .replaceAll("\\[[^]]*]", " ")                          // range selectors
                .replaceAll("\\b(by|without|on|ignoring|group_left|group_right)\\s*\\([^)]*\\)", " ") // label lists
                .replaceAll("\\$\\{?[a-zA-Z_][a-zA-Z0-9_]*}?", " ");   // Grafana variables
        Set<String> names = new TreeSet<>();
        Matcher m = IDENTIFIER.matcher(e);
        while (m.find()) {
            String word = m.group();
            int after = m.end();
            while (after < e.length() && Character.isWhitespace(e.charAt(after))) {
                after++;
            }
            boolean isFunction = after < e.length() && e.charAt(after) == '(';
            boolean isNumberPart = m.start() > 0 && (Character.isDigit(e.charAt(m.start() - 1)) || e.charAt(m.start() - 1) == '.');
            if (!isFunction && !isNumberPart && !PROMQL_WORDS.contains(word.toLowerCase())) {
                names.add(word);
            }
        }
        return names;
    }
}
