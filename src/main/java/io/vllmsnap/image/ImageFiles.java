package io.vllmsnap.image;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * The file list of an image, read from the exact bytes of its {@code manifest.json}: the contract shared with the
 * engine, which writes the manifest. Only the {@code files} object is read here:
 * <pre>{"files": {"criu/pages-1.img": {"size": 1048576, "sha256": "9f86d0..."}, ...}, ...}</pre>
 * Each key is a path relative to the image directory made of plain name segments ({@code [A-Za-z0-9._-]}, no
 * {@code .} or {@code ..}, no empty segment), so no entry can point outside the image or at the manifest or its
 * signature. Any other field of the manifest is the engine's and is ignored here.
 */
public final class ImageFiles {

    /** The manifest's name at the root of an image directory. */
    public static final String MANIFEST = "manifest.json";
    /** The detached signature of the manifest's bytes, beside it. */
    public static final String SIGNATURE = "manifest.json.sig";
    /** A manifest larger than this is refused before it is parsed (a real one is a few KiB). */
    public static final int MAX_MANIFEST_BYTES = 16 << 20;

    private static final Pattern SEGMENT = Pattern.compile("[A-Za-z0-9._-]{1,255}");
    private static final Pattern SHA256_HEX = Pattern.compile("[0-9a-f]{64}");
    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);

    /** One file of an image: its path relative to the image directory, its size and its SHA-256 (lowercase hex). */
    public record Entry(String path, long size, String sha256) {
        /** The OCI form of the digest. */
        public String digest() {
            return "sha256:" + sha256;
        }
    }

    private final byte[] manifestBytes;
    private final Map<String, Entry> entries;

    private ImageFiles(byte[] manifestBytes, Map<String, Entry> entries) {
        this.manifestBytes = manifestBytes;
        this.entries = entries;
    }

    /** Parses and checks the file list; the bytes are kept as they are (they are what the signature covers). */
    public static ImageFiles parse(byte[] manifestBytes) throws ImageException {
        if (manifestBytes.length > MAX_MANIFEST_BYTES) {
            throw invalid("it has " + manifestBytes.length + " bytes, more than " + MAX_MANIFEST_BYTES);
        }
        JsonNode root;
        try {
            root = JSON.readTree(manifestBytes);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw invalid("it is not valid JSON: " + e.getOriginalMessage());
        } catch (IOException e) {
            throw invalid("it is not valid JSON: " + e.getMessage());
        }
        if (root == null || !root.isObject()) {
            throw invalid("it is not a JSON object");
        }
        JsonNode files = root.get("files");
        if (files == null || !files.isObject()) {
            throw invalid("it has no \"files\" object");
        }
        Map<String, Entry> entries = new LinkedHashMap<>();
        Set<String> directories = new HashSet<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = files.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> f = it.next();
            String path = f.getKey();
            checkPath(path);
            JsonNode v = f.getValue();
            JsonNode size = v.get("size");
            JsonNode sha = v.get("sha256");
            if (!v.isObject() || size == null || !size.canConvertToLong() || !size.isIntegralNumber()
                    || size.asLong() < 0) {
                throw invalid("file '" + path + "' has no valid \"size\"");
            }
            if (sha == null || !sha.isTextual() || !SHA256_HEX.matcher(sha.asText()).matches()) {
                throw invalid("file '" + path + "' has no valid \"sha256\" (64 lowercase hex digits)");
            }
            entries.put(path, new Entry(path, size.asLong(), sha.asText()));
            for (int i = path.indexOf('/'); i >= 0; i = path.indexOf('/', i + 1)) {
                directories.add(path.substring(0, i));
            }
        }
        for (String dir : directories) {
            if (entries.containsKey(dir)) {
                throw invalid("'" + dir + "' is listed as a file and used as a directory");
            }
        }
        return new ImageFiles(manifestBytes.clone(), Collections.unmodifiableMap(entries));
    }

    private static void checkPath(String path) throws ImageException {
        if (path.isEmpty() || path.length() > 4096) {
            throw invalid("a file path is empty or too long");
        }
        String[] segments = path.split("/", -1);
        for (String s : segments) {
            if (!SEGMENT.matcher(s).matches() || s.equals(".") || s.equals("..")) {
                throw invalid("file path '" + path + "' is not a plain relative path inside the image");
            }
        }
        if (path.equals(MANIFEST) || path.equals(SIGNATURE)) {
            throw invalid("file path '" + path + "' names the manifest or its signature");
        }
    }

    private static ImageException invalid(String why) {
        return new ImageException(ImageException.Reason.InvalidManifest, MANIFEST + " is not a valid image manifest: "
                + why);
    }

    /** The manifest's bytes, exactly as signed. */
    public byte[] manifestBytes() {
        return manifestBytes.clone();
    }

    /** SHA-256 of the manifest's bytes (lowercase hex). */
    public String manifestSha256() {
        return Digests.sha256Hex(manifestBytes);
    }

    /** Files by path, in manifest order. */
    public Map<String, Entry> entries() {
        return entries;
    }

    public Entry get(String path) {
        return entries.get(path);
    }

    /** Sum of the listed files' sizes. */
    public long totalBytes() {
        return entries.values().stream().mapToLong(Entry::size).sum();
    }

    /** Every directory the listed files need, parents before children. */
    public List<String> directories() {
        Set<String> dirs = new java.util.TreeSet<>();
        for (String p : entries.keySet()) {
            for (int i = p.indexOf('/'); i >= 0; i = p.indexOf('/', i + 1)) {
                dirs.add(p.substring(0, i));
            }
        }
        return new ArrayList<>(dirs);
    }

    /** Whether two manifests are the same bytes (the same image). */
    public boolean sameManifest(ImageFiles other) {
        return MessageDigest.isEqual(manifestBytes, other.manifestBytes);
    }
}
