"""Offline evaluation: replay recorded LLM outputs through the real engine and measure what a policy costs.

``policyd eval`` loads a recorded dataset (``policyd.eval.sources``), fits a gate's
threshold on the train split (``policyd.eval.fit``), runs the engine with the
``replay`` provider over the test split (``policyd.eval.runner``) and reports accuracy,
cost per successful outcome and RouteLLM's CPT/APGR (``policyd.eval.metrics``).
"""
