# A harness that only expects CheckFailed: any other exception escapes and stops the run.

# %% run_compat
def run_compat(base_url, model, checks=None):
    rows = []
    for name, check in (checks or CHECKS).items():
        try:
            check(base_url, model)
            rows.append((name, "PASS", ""))
        except CheckFailed as exc:
            rows.append((name, "FAIL", str(exc)))
    return pd.DataFrame(rows, columns=["check", "verdict", "detail"])
