"""`sandbox load`: Locust load tests of a sharing center with the sandbox's hospitals as users.

- `plan`: who each user is and what it sends (no Locust here);
- `pool`: the files each worker renders once and serves for every exam;
- `users` / `locustfile`: the Locust side (runs only in Locust's own processes: gevent);
- `run`: the orchestration `sandbox load` does (child processes, summary, end-to-end check).
"""
