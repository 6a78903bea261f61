"""Small shared helpers: atomic files, manifests, rank sharding, configs, seeding."""
