package io.vllmsnap.engine;

import java.util.ServiceLoader;

/**
 * Finds the GPU checkpointer of this node: the first {@link GpuCheckpointer} registered as a service
 * ({@code META-INF/services/io.vllmsnap.engine.GpuCheckpointer}) that says it is {@link GpuCheckpointer#available()
 * available}, else {@link NoGpuCheckpointer}. Keeps the engine free of a compile-time dependency on the driver binding.
 */
public final class GpuCheckpointers {
    private GpuCheckpointers() {
    }

    public static GpuCheckpointer detect() {
        for (GpuCheckpointer g : ServiceLoader.load(GpuCheckpointer.class)) {
            try {
                if (g.available()) {
                    return g;
                }
            } catch (RuntimeException | LinkageError e) {
                // a binding that cannot load its library on this node is the same as none
            }
        }
        return new NoGpuCheckpointer();
    }
}
