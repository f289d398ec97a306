package io.vllmsnap.agent.discovery;

import io.vllmsnap.agent.Ids.ContainerRef;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * Finds a container's cgroup from its pod UID and container ID, without asking the container runtime.
 *
 * <p>Layouts the kubelet and runtimes create:
 * <ul>
 *   <li>systemd driver: {@code kubepods.slice/kubepods-<qos>.slice/kubepods-<qos>-pod<uid with '_'>.slice/}
 *       {@code cri-containerd-<id>.scope} (containerd) or {@code crio-<id>.scope} (CRI-O); Guaranteed pods sit
 *       directly under {@code kubepods.slice} as {@code kubepods-pod<uid>.slice};</li>
 *   <li>cgroupfs driver: {@code kubepods/<qos>/pod<uid>/<id>} (Guaranteed: {@code kubepods/pod<uid>/<id>}).</li>
 * </ul>
 * The kubelet may nest these under its own slice, so the pod directory is searched (bounded depth) instead of
 * assuming a fixed prefix. Hierarchies tried: cgroup v2 at the root, the hybrid v2 tree at {@code unified/}, then
 * the v1 {@code systemd} and {@code pids} hierarchies.
 */
public class CgroupLocator {

    private static final int MAX_POD_DEPTH = 6;
    private final Path cgroupRoot;

    public CgroupLocator(Path cgroupRoot) {
        this.cgroupRoot = cgroupRoot;
    }

    /** The hierarchy where cgroup v2 is mounted: the root itself (unified) or {@code unified/} (hybrid). */
    public Optional<Path> unifiedHierarchy() {
        if (Files.isRegularFile(cgroupRoot.resolve("cgroup.controllers"))) {
            return Optional.of(cgroupRoot);
        }
        Path hybrid = cgroupRoot.resolve("unified");
        return Files.isRegularFile(hybrid.resolve("cgroup.controllers")) ? Optional.of(hybrid) : Optional.empty();
    }

    public Path locate(String podUid, ContainerRef container) {
        List<Path> hierarchies = new ArrayList<>();
        unifiedHierarchy().ifPresent(hierarchies::add);
        hierarchies.add(cgroupRoot.resolve("systemd"));
        hierarchies.add(cgroupRoot.resolve("pids"));
        for (Path hierarchy : hierarchies) {
            if (!Files.isDirectory(hierarchy)) {
                continue;
            }
            for (Path podDir : podDirectories(hierarchy, podUid)) {
                Optional<Path> found = containerIn(podDir, container.id());
                if (found.isPresent()) {
                    return found.get();
                }
            }
        }
        throw new ContainerNotFoundException("no cgroup for container " + container.id() + " of pod " + podUid
                + " under " + cgroupRoot + " (is the pod running on this node?)");
    }

    private List<Path> podDirectories(Path hierarchy, String podUid) {
        String systemdName = "pod" + podUid.replace('-', '_') + ".slice";
        String cgroupfsName = "pod" + podUid;
        try (Stream<Path> dirs = Files.walk(hierarchy, MAX_POD_DEPTH)) {
            return dirs.filter(Files::isDirectory).filter(d -> {
                String name = d.getFileName().toString();
                return name.equals(cgroupfsName) || (name.endsWith(systemdName) && name.startsWith("kubepods"));
            }).toList();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot search cgroups under " + hierarchy, e);
        } catch (UncheckedIOException e) {
            // a cgroup removed while walking: search again would see a consistent tree, this one is gone
            return List.of();
        }
    }

    private static Optional<Path> containerIn(Path podDir, String id) {
        for (String name : List.of("cri-containerd-" + id + ".scope", "crio-" + id + ".scope", "docker-" + id + ".scope", id)) {
            Path candidate = podDir.resolve(name);
            if (Files.isDirectory(candidate)) {
                return Optional.of(candidate);
            }
        }
        return Optional.empty();
    }
}
