"""The package's private rules, each written once: argument checks (:mod:`.checks`), seeding
(:mod:`.seeding`), device resolution (:mod:`.devices`) and build information (:mod:`.build`).
Nothing here imports torch, scanpy, faiss or matplotlib at import time."""
