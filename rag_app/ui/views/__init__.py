"""UI page scripts run by st.navigation; each only calls its page function."""
