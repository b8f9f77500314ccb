"""Storage on a node: block devices (:mod:`.base`, :mod:`.filestorage`,
dispatched by disk type in :mod:`.bdev`) and storage units, the pools that
provide the space (:mod:`.container`)."""
