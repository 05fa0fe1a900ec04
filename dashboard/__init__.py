"""The Streamlit dashboard: `streamlit run dashboard/app.py`. Pages are thin: widgets -> config -> runner -> figures."""
