"""gymnasium environments of gymlab, registered under the `gymlab/` namespace."""
