// The few strings the loader (widget.js) shows on the host page. Kept apart
// so the loader bundles only these; en.ts and zh.ts include them.
export const launcherEn = {
  openChat: 'Open chat',
  closeChat: 'Close chat',
  frameTitle: 'Customer service chat',
} as const;

export const launcherZh: { [K in keyof typeof launcherEn]: string } = {
  openChat: '打开聊天',
  closeChat: '关闭聊天',
  frameTitle: '在线客服聊天窗口',
};
