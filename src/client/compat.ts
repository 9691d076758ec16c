/**
 * What the chat API object carries only so that code written for the reference SDK starts,
 * compiles and fails clearly (docs/migration.md): the members of the reference's chat
 * instance that tabchat does not implement, the types of the reference's data objects for
 * features tabchat does not have, and the one-time warnings for accepted but ignored options.
 *
 * The member lists are arrays of names, turned into methods by the chat class (one
 * generic function for all of them: every call rejects with 9015 NOT_IMPLEMENTED, a message
 * naming the member); their types come from the same arrays. test/compat/ derives the
 * reference's member list from its typings and checks that every member exists.
 */
import type { Logger } from '../protocol/data.js';

/** Members that return a `Message` in the reference (message factories). */
export const NOT_IMPLEMENTED_FACTORIES = [
  'createTextAtMessage', 'createImageMessage', 'createAudioMessage', 'createVideoMessage', 'createCustomMessage',
  'createFaceMessage', 'createFileMessage', 'createLocationMessage', 'createMergerMessage', 'createForwardMessage',
] as const;

/** Members that return nothing in the reference (listeners, callback-style calls). */
export const NOT_IMPLEMENTED_VOID = ['addSignalingListener', 'removeSignalingListener', 'inviteSync', 'inviteInGroupSync'] as const;

/** Members that return a Promise (or, for `findMessage` / `getSignalingInfo`, an object or null) in the reference. */
export const NOT_IMPLEMENTED_PROMISED = [
  'callExperimentalAPI', 'findMessage', 'getSignalingInfo',
  // messages
  'downloadMergerMessage', 'revokeMessage', 'deleteMessage', 'translateText', 'convertVoiceToText',
  'setMessageExtensions', 'getMessageExtensions', 'deleteMessageExtensions', 'modifyMessage',
  'searchCloudMessages', 'searchCloudGroups', 'searchCloudUsers', 'searchCloudGroupMembers',
  'addMessageReaction', 'removeMessageReaction', 'getMessageReactions', 'getAllUserListOfMessageReaction',
  'getMessageListHopping', 'sendMessageReadReceipt', 'getMessageReadReceiptList', 'getGroupMessageReadMemberList',
  // conversations (beyond the list, history, read state and deletion)
  'getConversationProfile', 'setConversationDraft', 'clearHistoryMessage', 'pinConversation', 'setAllMessageRead',
  'setMessageRemindType', 'setAllReceiveMessageOpt', 'getAllReceiveMessageOpt', 'setConversationCustomData',
  'markConversation', 'getConversationGroupList', 'createConversationGroup', 'deleteConversationGroup',
  'renameConversationGroup', 'addConversationsToGroup', 'deleteConversationsFromGroup',
  // profiles, status, relationships
  'getMyProfile', 'getUserProfile', 'updateMyProfile', 'getBlacklist', 'addToBlacklist', 'removeFromBlacklist',
  'setSelfStatus', 'getUserStatus', 'subscribeUserStatus', 'unsubscribeUserStatus',
  'getFriendList', 'addFriend', 'deleteFriend', 'checkFriend', 'getFriendProfile', 'updateFriend',
  'getFriendApplicationList', 'acceptFriendApplication', 'refuseFriendApplication', 'deleteFriendApplication',
  'setFriendApplicationRead', 'getFriendGroupList', 'createFriendGroup', 'deleteFriendGroup', 'addToFriendGroup',
  'removeFromFriendGroup', 'renameFriendGroup', 'followUser', 'unfollowUser', 'getMyFollowersList',
  'getMyFollowingList', 'getMutualFollowersList', 'getUserFollowInfo', 'checkFollowType',
  // groups, communities, topics
  'getGroupList', 'getGroupProfile', 'createGroup', 'dismissGroup', 'updateGroupProfile', 'joinGroup', 'quitGroup',
  'pinGroupMessage', 'getPinnedGroupMessageList', 'searchGroupByID', 'getGroupOnlineMemberCount', 'changeGroupOwner',
  'getGroupApplicationList', 'handleGroupApplication', 'initGroupAttributes', 'setGroupAttributes',
  'deleteGroupAttributes', 'getGroupAttributes', 'setGroupCounters', 'increaseGroupCounter', 'decreaseGroupCounter',
  'getGroupCounters', 'getGroupMemberList', 'getGroupMemberProfile', 'addGroupMember', 'deleteGroupMember',
  'setGroupMemberMuteTime', 'setGroupMemberRole', 'setGroupMemberNameCard', 'setGroupMemberCustomField',
  'markGroupMemberList', 'getJoinedCommunityList', 'createTopicInCommunity', 'deleteTopicFromCommunity',
  'updateTopicProfile', 'getTopicList',
  // signalling
  'invite', 'inviteInGroup', 'cancel', 'accept', 'reject', 'modifyInvitation',
] as const;

/** Every member tabchat does not implement, by name. */
export type NotImplementedName =
  | (typeof NOT_IMPLEMENTED_FACTORIES)[number]
  | (typeof NOT_IMPLEMENTED_VOID)[number]
  | (typeof NOT_IMPLEMENTED_PROMISED)[number];

/**
 * A data object of a reference feature tabchat does not have (conversation profile, group,
 * friend, …): typed loosely so that code written against the reference compiles; tabchat
 * never produces one.
 */
export interface ReferenceObject {
  [field: string]: any;
}

/**
 * The members tabchat does not implement, typed as the reference declares them so that
 * applications compile. **At run time every one of them returns a rejected Promise** (code
 * 9015 NOT_IMPLEMENTED, the member named in the message) and logs an error once per chat:
 * a `Message`-returning factory, a `void` listener and a Promise method alike. Nothing
 * throws, so an application that calls them at start-up keeps starting.
 */
export type NotImplementedMembers<M> = {
  [K in (typeof NOT_IMPLEMENTED_FACTORIES)[number]]: (options: any) => M;
} & {
  [K in (typeof NOT_IMPLEMENTED_VOID)[number]]: (...args: any[]) => void;
} & {
  [K in Exclude<(typeof NOT_IMPLEMENTED_PROMISED)[number], 'findMessage' | 'getSignalingInfo'>]: (...args: any[]) => Promise<any>;
} & {
  findMessage(messageID: string): M | null;
  getSignalingInfo(message: M): ReferenceObject | null;
};

/** Keys already warned about in this page or process (one warning per option, not per call). */
const warned = new Set<string>();

/**
 * Log `text` as a warning the first time `key` is seen in this page or process: options that
 * tabchat accepts and ignores are documented (docs/migration.md) and warned about once.
 */
export function warnOnce(log: Logger, key: string, text: string): void {
  if (warned.has(key)) return;
  warned.add(key);
  log.warn(text);
}

/**
 * Warn once for each option of `options` that tabchat accepts and ignores.
 * @param where - `create` or a method name, for the warning
 * @param names - the ignored option names to look for
 */
export function warnIgnored(log: Logger, where: string, options: object, names: readonly string[]): void {
  for (const name of names) {
    if ((options as Record<string, unknown>)[name] !== undefined) {
      warnOnce(log, `${where}.${name}`, `${where}: option ${name} is accepted and ignored by tabchat (docs/migration.md)`);
    }
  }
}
