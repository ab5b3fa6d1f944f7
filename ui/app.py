"""supportbot's web UI (Streamlit): the customer chat and the call-center agent-assist panel.
Both pages talk only to the gateway over gRPC.

    streamlit run ui/app.py
"""

import sys
from pathlib import Path

import streamlit as st

# Streamlit puts this folder, not the repository, on the import path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

st.set_page_config(page_title="Lumio support", page_icon=":material/support_agent:", layout="wide")
views = Path(__file__).parent / "views"
st.navigation(
    [
        st.Page(views / "customer.py", title="Customer chat", icon=":material/chat:", default=True),
        st.Page(views / "agent.py", title="Agent assist", icon=":material/support_agent:", url_path="agent"),
    ]
).run()
