package io.vllmsnap.api;

import io.fabric8.crd.generator.annotation.AdditionalPrinterColumn;
import io.fabric8.generator.annotation.ValidationRule;
import io.fabric8.kubernetes.api.model.Namespaced;
import io.fabric8.kubernetes.client.CustomResource;
import io.fabric8.kubernetes.model.annotation.Group;
import io.fabric8.kubernetes.model.annotation.ShortNames;
import io.fabric8.kubernetes.model.annotation.Version;

/** A snapshot of one warmed-up vLLM container: host memory (CRIU) plus GPU memory (driver checkpoint). */
@Group(ApiConstants.GROUP)
@Version(ApiConstants.VERSION)
@ShortNames("vsnap")
@AdditionalPrinterColumn(name = "Phase", jsonPath = ".status.phase", type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(name = "Node", jsonPath = ".status.node", type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(name = "Size", jsonPath = ".status.size", type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(name = "Latency", jsonPath = ".status.duration", type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(name = "Age", jsonPath = ".metadata.creationTimestamp", type = AdditionalPrinterColumn.Type.DATE)
@ValidationRule(value = "self.metadata.name.matches('^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$')",
        message = "name must be a DNS label (it names the pod template ConfigMap and the image)")
public class VllmSnapshot extends CustomResource<VllmSnapshotSpec, VllmSnapshotStatus> implements Namespaced {
}
