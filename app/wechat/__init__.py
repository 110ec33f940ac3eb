"""What the domain knows about WeChat: error classes shared by every port."""
