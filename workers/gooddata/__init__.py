"""GoodData Cloud through the official ``gooddata-sdk``: the client (rate-limited, with
timeouts), error classification, the workspace tree, provisioning, sync, backup and
restore, and exports. The ``gooddata`` pool's actors (workers/pools/gooddata.py) are
thin wrappers over these modules."""
