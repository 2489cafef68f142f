"""Job templates run as Ray work; they import only `fabric.runtime` from Fabric."""
