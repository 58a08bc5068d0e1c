"""Agent: plan sub-questions, act with tools, observe, then a final answer checked like others."""
